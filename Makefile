# Two commands set everything up on a fresh machine with Python 3.11+ and make:
#   make demo   run the main job on the embedded PostgreSQL
#   make test   run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPANIES ?= 10000

.PHONY: install demo test test-slow test-faults bench dev clean lint

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: install
	$(BIN)/enrichment-pipeline demo --companies $(COMPANIES)

test: install
	$(BIN)/python -m pytest -m 'not slow' -q

test-slow: install
	$(BIN)/python -m pytest -m slow -q

# The fault-injection suite alone (make test runs it too).
test-faults: install
	$(BIN)/python -m pytest -q enrichment_pipeline_tests/faults

# Each benchmark prints one JSON line; the README's performance table holds the latest figures.
bench: install
	$(BIN)/python benchmarks/generate_speed.py
	$(BIN)/python benchmarks/import_speed.py
	$(BIN)/python benchmarks/lookup_throughput.py
	$(BIN)/python benchmarks/connection_storm.py

dev: install
	$(BIN)/enrichment-pipeline dev

lint: install
	$(BIN)/python -m pytest -q enrichment_pipeline_tests/test_code_rules.py

clean:
	-$(BIN)/enrichment-pipeline db stop
	rm -rf .enrichment
