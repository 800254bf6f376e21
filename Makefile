# refund-recon: `make run` and `make test` work on a fresh clone (they create the venv).
# Both install from the hashed lock files in requirements/ (`make lock` writes them from
# pyproject's ranges): `make run` the runtime only (run.txt), `make test` runtime + test extras,
# `make bench` runtime + the bench extra (bench.txt: Polars, for the Polars peer).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
UV_VERSION := 0.13.9
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
SPARK_VENV := .venv-spark
# Defined before the rules that name them: make expands a rule's prerequisites as it reads it.
SPARK_STAMP := $(SPARK_VENV)/.installed-spark
SPARK_TESTS := $(SPARK_VENV)/bin/pytest -m spark -W ignore::FutureWarning -p no:cacheprovider tests/test_spark.py
# `uv pip install`, not `sync`: sync would also remove pip, which tests/test_packaging.py runs.
# Bytecode is compiled at install (uv does not by default): every process of the job, the tests
# and the bench would otherwise compile pandas, DuckDB's and Pandera's sources again where
# .pyc files cannot be written (PYTHONDONTWRITEBYTECODE): 3.1 s -> 1.2 s to import the job.
INSTALL := $(UV) pip install --quiet --compile-bytecode --python $(BIN)/python
# The job's own modules (installed editable, so not compiled by uv); stale .pyc files are
# ignored by Python, and `run` and `bench` refresh them.
COMPILE := $(BIN)/python -m compileall -q jobs benchmarks
LOCK    := $(UV) pip compile pyproject.toml --quiet --universal --python-version 3.11 --generate-hashes \
           --custom-compile-command "make lock" $(LOCK_ARGS)
# xdist: one worker per core; loadfile keeps a file's tests (and its module-scoped warehouse) on one worker;
# files are handed out in the order tests/conftest.py gives (heaviest first), not re-sorted by test count.
PYTEST_XDIST ?= -n auto --dist loadfile --no-loadscope-reorder
# The report's browser test drives Debian's Chromium (no browser download); `make test`
# installs it when missing (CI runs as root; elsewhere through sudo). `make run` needs no browser.
CHROMIUM ?= /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test fuzz test-fast test-spark test-spark-connect lint validate clean bench lock

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)

$(RUN_STAMP): requirements/run.txt pyproject.toml | $(UV)
	$(INSTALL) --require-hashes -r requirements/run.txt
	$(INSTALL) --no-deps -e .
	$(COMPILE)
	touch $@

$(TEST_STAMP): requirements/test.txt pyproject.toml | $(UV)
	$(INSTALL) --require-hashes -r requirements/test.txt
	$(INSTALL) --no-deps -e .
	$(COMPILE)
	touch $@

$(BENCH_STAMP): requirements/bench.txt pyproject.toml | $(UV)
	$(INSTALL) --require-hashes -r requirements/bench.txt
	$(INSTALL) --no-deps -e .
	$(COMPILE)
	touch $@

lock: | $(UV)  ## re-resolve requirements/*.txt within pyproject's ranges (LOCK_ARGS=--upgrade for newer)
	$(LOCK) -o requirements/run.txt
	$(LOCK) --extra test -o requirements/test.txt
	$(LOCK) --extra test --extra spark -o requirements/spark.txt
	$(LOCK) --extra bench -o requirements/bench.txt

run: $(RUN_STAMP)  ## run the nightly job on data/sample into out/recon.duckdb
	$(COMPILE)
	$(BIN)/refund-recon run --input data/sample --db out/recon.duckdb \
		--as-of 2026-03-31 --config data/sample/refund-recon.toml

validate: $(RUN_STAMP)  ## check data/sample without writing anything
	$(BIN)/refund-recon validate --input data/sample --as-of 2026-03-31 \
		--config data/sample/refund-recon.toml

# `make bench SCALES="1 10"`: issues #5 and #12's benchmark (job vs reading the inputs vs a pandas
# and a Polars peer); writes benchmarks/results/. Not part of `make test`. BENCH_ARGS passes more options.
# `make bench ENGINE=spark SCALES=1`: the Spark engine's night beside the DuckDB engine's (issue #13,
# benchmarks/engines.py; results/<timestamp>-spark.md).
SCALES ?= 1 10
ENGINE ?= duckdb
ifeq ($(ENGINE),spark)
bench: $(RUN_STAMP) $(SPARK_STAMP)  ## time the job against the floor and the pandas and Polars peers at each scale
	$(COMPILE)
	$(BIN)/python -m benchmarks.engines --scales $(SCALES) $(BENCH_ARGS)
else
bench: $(RUN_STAMP) $(BENCH_STAMP)  ## time the job against the floor and the pandas and Polars peers at each scale
	$(COMPILE)
	$(BIN)/python -m benchmarks.bench --scales $(SCALES) $(BENCH_ARGS)
endif

test: $(TEST_STAMP) $(CHROMIUM) $(SPARK_STAMP)  ## the whole test suite (what CI runs), in parallel, then the Spark parity tests
	$(BIN)/pytest $(PYTEST_XDIST)
	$(SPARK_TESTS)

fuzz: $(TEST_STAMP)  ## the fuzz properties with 4 times the examples `make test` tries
	REFUND_RECON_FUZZ_SCALE=4 $(BIN)/pytest $(PYTEST_XDIST) -m fuzz

test-fast: $(TEST_STAMP)  ## while working: everything but the slow suites (fuzz, SIGKILL, browser...)
	$(BIN)/pytest $(PYTEST_XDIST) -m "not slow"

# The Spark engine's parity tests, in a venv of their own (PySpark slows every process of the
# main one); Spark needs Java 17+, installed from Debian when missing. `make test` runs them too
# (one local[2] session, under 2 minutes: docs/spark.md).

$(SPARK_STAMP): requirements/spark.txt pyproject.toml | $(UV)
	command -v java >/dev/null || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends openjdk-17-jre-headless)
	test -x $(SPARK_VENV)/bin/python || $(PYTHON) -m venv $(SPARK_VENV)
	$(UV) pip install --quiet --compile-bytecode --python $(SPARK_VENV)/bin/python --require-hashes -r requirements/spark.txt
	$(UV) pip install --quiet --python $(SPARK_VENV)/bin/python --no-deps -e .
	touch $@

test-spark: $(SPARK_STAMP)  ## the Spark engine's parity tests alone
	$(SPARK_TESTS)

test-spark-connect: $(SPARK_STAMP)  ## the Spark Connect run (--spark-remote, a local Connect server) against DuckDB's outputs
	$(SPARK_VENV)/bin/pytest -m spark_connect -W ignore::FutureWarning -p no:cacheprovider tests/test_spark.py

lint: $(TEST_STAMP)  ## ruff (lint + format) on the code, mypy on jobs/ (pyproject configures both)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy jobs

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

clean:
	rm -rf $(VENV) $(SPARK_VENV) out .pytest_cache .hypothesis
