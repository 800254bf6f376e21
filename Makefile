# refund-recon: `make run` and `make test` work on a fresh clone (they create the venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The report's browser test drives Debian's Chromium (no browser download); `make test`
# installs it when missing (CI runs as root; elsewhere through sudo). `make run` needs no browser.
CHROMIUM ?= /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test validate clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)  ## run the nightly job on data/sample into out/recon.duckdb
	$(BIN)/refund-recon run --input data/sample --db out/recon.duckdb \
		--as-of 2026-03-31 --config data/sample/refund-recon.toml

validate: $(STAMP)  ## check data/sample without writing anything
	$(BIN)/refund-recon validate --input data/sample --as-of 2026-03-31 \
		--config data/sample/refund-recon.toml

# `make bench SCALES="1 10"`: issue #5's benchmark (job vs reading the inputs vs a pandas
# peer); writes benchmarks/results/. Not part of `make test`. BENCH_ARGS passes more options.
SCALES ?= 1 10
bench: $(STAMP)  ## time the job against the floor and the pandas peer at each scale
	$(BIN)/python -m benchmarks.bench --scales $(SCALES) $(BENCH_ARGS)

test: $(STAMP) $(CHROMIUM)  ## the whole test suite (what CI runs)
	$(BIN)/pytest

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
