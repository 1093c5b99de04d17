# The documented entry points. `make run` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
SUDO   := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
export PORT

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

## run: install, migrate, seed the demo, start web + Celery worker + beat (Ctrl-C stops all)
run: $(VENV)/.run-deps
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py seed_demo
	DEBUG=$${DEBUG-1} exec $(BIN)/python manage.py runstack --port $(PORT)

## test: install the dev extra (and Debian's chromium if missing), check, run the suite
test: $(VENV)/.dev-deps chromium
	SECRET_KEY=$${SECRET_KEY:-insecure-test-only-key} $(BIN)/python manage.py check
	SECRET_KEY=$${SECRET_KEY:-insecure-test-only-key} $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/ruff check .
	SECRET_KEY=$${SECRET_KEY:-insecure-test-only-key} $(BIN)/python -m pytest $(PYTEST_ARGS)

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## bench: the benchmarks, each on its own PostgreSQL database named *bench* (DATABASE_URL)
bench: bench-catalog bench-checks bench-serving bench-usage
bench-catalog: $(VENV)/.dev-deps
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/catalog.py $(BENCH_ARGS)
bench-checks: $(VENV)/.dev-deps
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/checks.py $(BENCH_ARGS)
bench-serving: $(VENV)/.dev-deps
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/serving.py $(BENCH_ARGS)
bench-usage: $(VENV)/.dev-deps
	SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key} $(BIN)/python bench/usage.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
