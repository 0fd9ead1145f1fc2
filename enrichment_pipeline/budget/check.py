"""Compare the worst case with what the server allows, live or as told; refuse work that does not fit."""

from __future__ import annotations

from enrichment_pipeline.budget.derive import Budget, budget_for_project
from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.errors import BudgetExceeded

_LIMITS = """
SELECT current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int,
       coalesce(current_setting('reserved_connections', true), '0')::int
"""


def server_limits(postgres: PostgresResource) -> tuple[int, int, int]:
    with postgres.connection("budget") as conn:
        max_connections, superuser, reserved = conn.execute(_LIMITS).fetchone()
    return int(max_connections), int(superuser), int(reserved)


def project_budget(postgres: PostgresResource | None, *, max_connections: int | None = None,
                   webserver_overflow: int | None = None) -> Budget:
    budget = budget_for_project(webserver_overflow=webserver_overflow)
    if max_connections is not None:
        budget.server_max_connections, budget.source = max_connections, "--max-connections"
    elif postgres is not None:
        budget.server_max_connections, budget.superuser_reserved, budget.reserved = server_limits(postgres)
        budget.source = "read live from the server"
    return budget


def require_fits(postgres: PostgresResource, *, webserver_overflow: int | None = None) -> Budget:
    """`dev` and `demo` run this before any work: a configuration that does not fit is refused."""
    budget = project_budget(postgres, webserver_overflow=webserver_overflow)
    if not budget.fits:
        raise BudgetExceeded(f"{budget.advice()}\n{budget.derivation()}")
    return budget
