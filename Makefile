# The documented entry points. `make run` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
SUDO   := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
export PORT

.PHONY: run test lint bench bench-catalog bench-checks bench-serving bench-load bench-exports chromium clean
.PHONY: run test lint bench bench-catalog bench-checks bench-serving bench-usage chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.run-deps

## run: install, migrate, seed the demo, start web + Celery worker + beat + the SQL endpoint
## (`manage.py sql_server`, PostgreSQL wire protocol on PORTAL_SQL_PORT; Ctrl-C stops all).
## The address and demo logins come last. DEBUG=1 here shows the portal's own 404/500
## pages; DEBUG_PAGES=1 make run shows Django's debug pages instead.
## DEMO_ENGINE=spark make run: the demo's warehouse on a local Spark Connect server that
## runstack starts and stops (Java and var/spark-server installed first, see spark-server).
run: $(VENV)/.run-deps $(if $(filter spark,$(DEMO_ENGINE)),java spark-server)
	@echo "Preparing the database and the demo data…"
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py migrate --noinput -v 0
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py seed_demo
	DEBUG=$${DEBUG-1} exec $(BIN)/python manage.py runstack --port $(PORT)

## test: install the dev extra (and Debian's chromium if missing), check, run the suite
test: $(VENV)/.dev-deps chromium delta-sharing-client client-compat java spark-server
	SECRET_KEY=$${SECRET_KEY:-insecure-test-only-key} $(BIN)/python manage.py check
	SECRET_KEY=$${SECRET_KEY:-insecure-test-only-key} $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	SECRET_KEY=$${SECRET_KEY:-insecure-test-only-key} $(BIN)/python -m pytest $(PYTEST_ARGS)

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

## bench: the benchmarks, each on its own PostgreSQL database named *bench* (DATABASE_URL)
bench: bench-catalog bench-checks bench-serving bench-exports bench-delta-sharing bench-usage bench-load
bench-catalog: $(VENV)/.dev-deps
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/catalog.py $(BENCH_ARGS)
bench-checks: $(VENV)/.dev-deps
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/checks.py $(BENCH_ARGS)
bench-load: $(VENV)/.dev-deps
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/load.py $(BENCH_ARGS)
bench-serving: $(VENV)/.dev-deps
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/serving.py $(BENCH_ARGS)
bench-exports: $(VENV)/.dev-deps
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/exports.py $(BENCH_ARGS)
bench-usage: $(VENV)/.dev-deps
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/usage.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var

## delta-sharing-client: the public delta-sharing client (what recipients run) in its own
## virtualenv, var/delta-sharing-client: it pins pandas < 3. Tests and bench run it.
.PHONY: delta-sharing-client bench-delta-sharing
DELTA_SHARING_CLIENT := var/delta-sharing-client
delta-sharing-client: $(DELTA_SHARING_CLIENT)/.installed
$(DELTA_SHARING_CLIENT)/.installed:
	$(PYTHON) -m venv $(DELTA_SHARING_CLIENT)
	$(DELTA_SHARING_CLIENT)/bin/pip install --quiet 'delta-sharing>=1.4,<2'
	touch $@
bench-delta-sharing: $(VENV)/.dev-deps delta-sharing-client
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/delta_sharing.py $(BENCH_ARGS)
## bench-metrics: metrics through the API against hand-written SQL, 10 million rows (issue 6)
.PHONY: bench-metrics
bench: bench-metrics
bench-metrics: $(VENV)/.dev-deps
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/metrics.py $(BENCH_ARGS)
## bench-streams: the governed read of a stream port against a plain nats-py consumer (issue 16)
.PHONY: bench-streams
bench: bench-streams
bench-streams: $(VENV)/.dev-deps
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/streams.py $(BENCH_ARGS)
## client-compat: the notebook client with an older pandas/pyarrow pair (pandas 2.2,
## pyarrow 17) in its own virtualenv, var/client-compat: tests read a live portal with it,
## so the client keeps working with the previous major versions as well as the pinned ones.
.PHONY: client-compat
CLIENT_COMPAT := var/client-compat
client-compat: $(CLIENT_COMPAT)/.installed
$(CLIENT_COMPAT)/.installed: $(wildcard portal_client/*.py) portal_client/pyproject.toml
	$(PYTHON) -m venv $(CLIENT_COMPAT)
	$(CLIENT_COMPAT)/bin/pip install --quiet 'pandas==2.2.*' 'pyarrow==17.*' 'numpy<2.3'
	$(CLIENT_COMPAT)/bin/pip install --quiet ./portal_client
	touch $@
## spark-server: Spark itself (the full pyspark package: ~450 MB to download, ~510 MB on
## disk) in its own virtualenv, var/spark-server, for the local Spark Connect server that
## tests start (products/connectors/spark_server.py; `python -m
## products.connectors.spark_server` starts one by hand). The portal's .venv has the client
## only (pyspark-client, pinned to the same minor version): both install the package `pyspark`.
## java: Debian's Java 17, which Spark needs, when no java is on the PATH.
.PHONY: spark-server java
SPARK_SERVER := var/spark-server
SPARK_VERSION := 4.2
spark-server: $(SPARK_SERVER)/.installed-$(SPARK_VERSION)
$(SPARK_SERVER)/.installed-$(SPARK_VERSION):
	$(PYTHON) -m venv $(SPARK_SERVER)
	$(SPARK_SERVER)/bin/pip install --quiet 'pyspark==$(SPARK_VERSION).*'
	touch $@
java:
	@command -v java >/dev/null 2>&1 || { \
		echo "Installing Debian's Java 17 for the Spark tests"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq openjdk-17-jre-headless; }
