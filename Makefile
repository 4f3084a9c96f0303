# Two commands do everything: `make run` and `make test`.
# Each target is idempotent: the venv and node_modules are rebuilt only when
# pyproject.toml, requirements.lock or package-lock.json change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Pinned versions with hashes of every dependency (the test extra included): `make lock`
# writes it from pyproject.toml. requirements-runtime.lock (no extras) is the Dockerfile's.
LOCK := requirements.lock
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-postgres test-unit test-e2e lint format bench fuzz lock clean

install: $(VENV)/.installed node_modules/.installed

# The editable install needs node_modules first: the wheel's force-include names its files.
$(VENV)/.installed: pyproject.toml $(wildcard $(LOCK)) node_modules/.installed
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if [ -f $(LOCK) ]; then \
		$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK) \
		&& $(BIN)/python -m pip install --quiet --no-deps -e . ; \
	else \
		$(BIN)/python -m pip install --quiet -e '.[test]' ; \
	fi
	touch $@

# Re-pin after changing a dependency in pyproject.toml (needs the network; commit both files).
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --no-emit-package pip --custom-compile-command "make lock"
lock: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet 'uv>=0.5'
	$(UV_COMPILE) --extra test --upgrade -o $(LOCK)
	$(UV_COMPILE) -c $(LOCK) -o requirements-runtime.lock

node_modules/.installed: package.json package-lock.json
	SCARF_ANALYTICS=false npm ci --no-audit --no-fund
	touch $@

run: install
	$(BIN)/backprop-live serve --host $(HOST) --port $(PORT)

# Browser tests run in their own pytest call: Playwright's sync API leaves an
# event loop on the main thread that would disturb the other tests. The runs, API and
# reliability suites run once more on a throwaway PostgreSQL cluster (tests/pg.py)
# when PostgreSQL and psycopg are installed, and always under CI (they fail there
# without them).
test: install
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-postgres
	$(BIN)/python -m pytest -m e2e tests/e2e $(PYTEST_ARGS)

test-postgres: install
	if [ -n "$$CI" ] && [ "$$CI" != false ] || $(BIN)/python -m tests.pg; then \
		BACKPROP_LIVE_TEST_DB=postgresql $(BIN)/python -m pytest -m "not e2e" \
			tests/runs tests/api tests/reliability $(PYTEST_ARGS); \
	fi

test-unit: install
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

test-e2e: install
	$(BIN)/python -m pytest -m e2e tests/e2e $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app/nn

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The OpenAPI fuzzer at length: many examples per operation, schemathesis' coverage
# phase (every boundary value), and known deviations counted as failures. `make test`
# runs the same test with 30 examples per operation.
FUZZ_EXAMPLES ?= 500
fuzz: install
	BACKPROP_LIVE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) BACKPROP_LIVE_FUZZ_STRICT=1 \
		$(BIN)/python -m pytest tests/reliability/test_fuzz.py -o timeout=3600 $(PYTEST_ARGS)

$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

# Some machines here set OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE to work around old
# OpenBLAS builds; they force a slower kernel on the current numpy. A user's
# machine has neither, so the benchmarks measure without them (the scripts
# print the kernel in use). Tests and CI keep the environment as it is.
BENCH_ENV := env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE

bench: install $(VENV)/.bench-installed
	$(BENCH_ENV) $(BIN)/python benchmarks/bench_trainer.py
	$(BENCH_ENV) $(BIN)/python benchmarks/bench_serving.py
	$(BENCH_ENV) $(BIN)/python benchmarks/bench_load.py
	$(BENCH_ENV) $(BIN)/python benchmarks/bench_playground.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache
