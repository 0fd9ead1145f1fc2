"""Code rules CI enforces (`make lint`): no SQL is built by string formatting with data.

Fault guarded against: SQL injection, and SQL whose text changes with the data (no plan reuse).

The rule, checked on the syntax tree of every module of the package, its tests and benchmarks: the
SQL argument of each `execute`, `executemany`, `copy` and `exec_driver_sql` call must be *static*,
which means one of

- a string literal;
- a constant: an UPPER_CASE (or _UPPER_CASE) name assigned once at module level, here or in one of
  our modules it is imported from, whose value is itself static;
- a local variable whose every assignment in its function is static;
- an f-string, `+`, `%` or `str.format()` whose every part is static: interpolating constants
  (`f"SELECT count(*) FROM companies c WHERE {_ABSENT}"`) is how shared SQL fragments are reused;
- `a if condition else b` with both branches static;
- psycopg.sql composition: `sql.SQL(static)`, and `.format()` / `.join()` on it, whose arguments
  are `sql.Identifier`, `sql.Literal`, `sql.Placeholder` or plain values (which psycopg quotes as
  literals), or `sql.SQL(static)` again.

Anything else (a function parameter, the result of a call, an f-string over a local value) is a
finding: values go in as bound parameters, names as `sql.Identifier`. No file is exempt.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("enrichment_pipeline", "enrichment_pipeline_tests", "benchmarks")
SQL_METHODS = frozenset({"execute", "executemany", "copy", "exec_driver_sql"})
SQL_KEYWORDS = ("query", "sql", "statement")
CONSTANT_NAME = re.compile(r"\A_?[A-Z][A-Z0-9_]*\Z")
SQL_CLASS = "psycopg.sql.SQL"  # raw SQL text inside a psycopg composition


@dataclass
class Module:
    """One parsed module: its top-level constants and what its imported names stand for."""

    name: str
    tree: ast.Module
    constants: dict[str, ast.expr] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)  # local name -> dotted origin


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def parse_module(source: str, name: str) -> Module:
    module = Module(name, ast.parse(source))
    assigned: dict[str, int] = {}
    for node in module.tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name):
                assigned[target.id] = assigned.get(target.id, 0) + 1
                if value is not None:
                    module.constants[target.id] = value
    for node in ast.walk(module.tree):  # imports inside functions too (lazy imports keep the CLI fast)
        if isinstance(node, ast.Import):
            for alias in node.names:
                module.imports[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                module.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    # A constant is assigned once, at module level, and never declared global in a function.
    rebound = {n for f in ast.walk(module.tree) if isinstance(f, ast.Global) for n in f.names}
    module.constants = {n: v for n, v in module.constants.items()
                        if assigned[n] == 1 and n not in rebound and CONSTANT_NAME.match(n)}
    return module


@cache
def _project_module(dotted: str) -> Module | None:
    base = ROOT.joinpath(*dotted.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return parse_module(path.read_text(encoding="utf-8"), dotted)
    return None


class SqlChecker(ast.NodeVisitor):
    """Collects `path:line: reason` for every SQL argument that is not static."""

    def __init__(self, module: Module, label: str) -> None:
        self.module = module
        self.label = label
        self.findings: list[str] = []
        self.checked = 0
        self._locals: list[dict[str, list[ast.expr]]] = []

    # -- walking ---------------------------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        assignments: dict[str, list[ast.expr]] = {}
        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg, node.args.kwarg]:
            if arg is not None:
                assignments.setdefault(arg.arg, []).append(ast.Name("<parameter>"))  # never static
        for child in ast.walk(node):
            if isinstance(child, ast.Assign):
                for target in child.targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            value = child.value if isinstance(target, ast.Name) else ast.Name("<unpacked>")
                            assignments.setdefault(name.id, []).append(value)
            elif isinstance(child, (ast.AnnAssign, ast.AugAssign)) and isinstance(child.target, ast.Name):
                value = child.value if isinstance(child, ast.AnnAssign) and child.value is not None else ast.Name("<changed>")
                assignments.setdefault(child.target.id, []).append(value)
            elif isinstance(child, (ast.For, ast.AsyncFor, ast.comprehension, ast.withitem, ast.NamedExpr)):
                target = getattr(child, "target", None) or getattr(child, "optional_vars", None)
                for name in ast.walk(target) if target is not None else ():
                    if isinstance(name, ast.Name):
                        assignments.setdefault(name.id, []).append(ast.Name("<bound>"))
        self._locals.append(assignments)
        self.generic_visit(node)
        self._locals.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Call(self, node: ast.Call) -> None:
        sql_arg = self._sql_argument(node)
        self.checked += sql_arg is not None
        if sql_arg is not None and not self.static(sql_arg, set()):
            self.findings.append(f"{self.label}:{node.lineno}: SQL built from non-constant parts: {ast.unparse(sql_arg)[:100]}")
        self.generic_visit(node)

    def _sql_argument(self, node: ast.Call) -> ast.expr | None:
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr in SQL_METHODS):
            return None
        if func.attr == "copy" and self._qualified(func.value) in self.module.imports.values():
            return None  # shutil.copy, copy.copy: a module's function, not a cursor's COPY
        if node.args:
            return node.args[0]
        return next((k.value for k in node.keywords if k.arg in SQL_KEYWORDS), None)

    # -- the rule --------------------------------------------------------------------------
    def static(self, node: ast.expr, seen: set[str]) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, (str, bytes))
        if isinstance(node, ast.JoinedStr):
            return all(self.static(v.value, seen) for v in node.values if isinstance(v, ast.FormattedValue))
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
            right = node.right.elts if isinstance(node.op, ast.Mod) and isinstance(node.right, ast.Tuple) else [node.right]
            return self.static(node.left, seen) and all(self.static(r, seen) for r in right)
        if isinstance(node, ast.IfExp):
            return self.static(node.body, seen) and self.static(node.orelse, seen)
        if isinstance(node, ast.Call):
            return self._static_call(node, seen)
        if isinstance(node, (ast.Name, ast.Attribute)):
            return self._static_reference(node, seen)
        return False

    def _static_call(self, node: ast.Call, seen: set[str]) -> bool:
        func = node.func
        if self._qualified(func) == SQL_CLASS:
            return len(node.args) == 1 and self.static(node.args[0], seen)
        if isinstance(func, ast.Attribute) and func.attr in ("format", "join"):
            if self._composable(func.value, seen):
                return all(self._composable_argument(a, seen) for a in [*node.args, *(k.value for k in node.keywords)])
            if func.attr == "format":  # str.format: every part must be static
                return self.static(func.value, seen) and all(
                    self.static(a, seen) for a in [*node.args, *(k.value for k in node.keywords)])
        return False

    def _composable(self, node: ast.expr, seen: set[str]) -> bool:
        """sql.SQL(static), or .format()/.join() on one: a psycopg Composed."""
        if not isinstance(node, ast.Call):
            return False
        if self._qualified(node.func) == SQL_CLASS:
            return self._static_call(node, seen)
        return isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join") and \
            self._composable(node.func.value, seen) and self._static_call(node, seen)

    def _composable_argument(self, node: ast.expr, seen: set[str]) -> bool:
        """psycopg quotes what a composition is given (Identifier, Literal, a plain value as a
        literal); only an sql.SQL() inside it is raw text, and that text must be static."""
        return all(self._static_call(call, seen) for call in ast.walk(node)
                   if isinstance(call, ast.Call) and self._qualified(call.func) == SQL_CLASS)

    def _static_reference(self, node: ast.Name | ast.Attribute, seen: set[str]) -> bool:
        if isinstance(node, ast.Name):
            for scope in reversed(self._locals):
                if node.id in scope:
                    return all(self.static(v, seen | {node.id}) for v in scope[node.id]) if node.id not in seen else False
            if node.id in self.module.constants and node.id not in seen:
                return self.static(self.module.constants[node.id], seen | {node.id})
        origin = self._qualified(node)
        if origin is None or "." not in origin:
            return False
        owner, _, name = origin.rpartition(".")
        other = _project_module(owner)
        if other is None or name not in other.constants:
            return False
        return SqlChecker(other, owner).static(other.constants[name], set())

    def _qualified(self, node: ast.expr) -> str | None:
        """The dotted origin of a name or attribute chain through this module's imports."""
        if isinstance(node, ast.Name):
            if any(node.id in scope for scope in self._locals):
                return None
            return self.module.imports.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._qualified(node.value)
            return f"{base}.{node.attr}" if base is not None else None
        return None


def _checked(source: str, name: str = "snippet", label: str = "snippet") -> SqlChecker:
    checker = SqlChecker(parse_module(source, name), label)
    checker.visit(checker.module.tree)
    return checker


def check_source(source: str, name: str = "snippet", label: str = "snippet") -> list[str]:
    return _checked(source, name, label).findings


def _python_files() -> list[Path]:
    return sorted(p for folder in SCANNED for p in (ROOT / folder).rglob("*.py") if ".venv" not in p.parts)


def test_no_sql_is_built_by_string_formatting_with_data() -> None:
    findings: list[str] = []
    calls = 0
    for path in _python_files():
        checker = _checked(path.read_text(encoding="utf-8"), _module_name(path), str(path.relative_to(ROOT)))
        findings += checker.findings
        calls += checker.checked
    assert len(_python_files()) > 50 and calls > 100  # the scan really covers the tree and its SQL calls
    assert findings == []


SNIPPETS_FLAGGED = {
    "f-string over a parameter": 'def f(conn, table):\n    conn.execute(f"SELECT * FROM {table}")',
    "percent formatting": 'def f(conn, orgnr):\n    conn.execute("SELECT 1 WHERE orgnr = \'%s\'" % orgnr)',
    "str.format with data": 'def f(conn, orgnr):\n    conn.execute("DELETE FROM companies WHERE orgnr = {}".format(orgnr))',
    "concatenation with data": 'def f(conn, where):\n    conn.execute("SELECT 1 FROM companies WHERE " + where)',
    "a local built from data": 'def f(conn, n):\n    query = f"SELECT {n}"\n    conn.execute(query)',
    "a parameter": 'def f(cur, statement):\n    cur.executemany(statement, [])',
    "sql.SQL over an f-string": 'from psycopg import sql\ndef f(conn, t):\n    conn.execute(sql.SQL(f"SELECT * FROM {t}"))',
    "a lower-case module global": 'query = "SELECT 1"\ndef f(conn):\n    conn.execute(query)',
    "a constant assigned twice": 'Q = "SELECT 1"\nQ = input()\ndef f(conn):\n    conn.execute(Q)',
    "copy from a call": 'def f(cur, build):\n    with cur.copy(build()):\n        pass',
    "f-string over a constant built from data": 'import os\nT = os.environ["T"]\ndef f(conn):\n    conn.execute(f"SELECT * FROM {T}")',
}

SNIPPETS_ALLOWED = {
    "a literal with parameters": 'def f(conn, orgnr):\n    conn.execute("SELECT 1 WHERE orgnr = %s", [orgnr])',
    "a module constant": '_Q = "SELECT 1"\ndef f(conn):\n    conn.execute(_Q)',
    "f-string over constants": '_W = "deleted_at IS NULL"\n_T = f"SELECT {_W}"\ndef f(conn):\n    conn.execute(f"{_T} AND {_W}")',
    "a static local": 'def f(conn):\n    query = "SELECT 1"\n    conn.execute(query)',
    "either of two constants": 'A = "COPY a FROM STDIN"\nB = "COPY b FROM STDIN"\ndef f(cur, x):\n    cur.copy(A if x else B)',
    "psycopg composition": ('from psycopg import sql\ndef f(conn, name, tables):\n'
                            '    conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))\n'
                            '    conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))\n'
                            '    conn.execute(sql.SQL("SELECT {}").format(name))'),
    "shutil.copy is no SQL": 'import shutil\ndef f(a, b):\n    shutil.copy(a, b)',
}


@pytest.mark.parametrize("case", list(SNIPPETS_FLAGGED))
def test_the_sql_rule_flags_formatting_with_data(case: str) -> None:
    assert len(check_source(textwrap.dedent(SNIPPETS_FLAGGED[case]))) == 1


@pytest.mark.parametrize("case", list(SNIPPETS_ALLOWED))
def test_the_sql_rule_allows_constants_bound_parameters_and_composition(case: str) -> None:
    assert check_source(textwrap.dedent(SNIPPETS_ALLOWED[case])) == []
