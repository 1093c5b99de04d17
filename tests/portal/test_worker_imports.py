"""What a Celery worker holds idle: it loads its tasks, not every view, and the data
libraries (DuckDB and sqlglot included) only when a task needs them (bench/memory.py
measures what that saves)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

# DuckDB (~12 MB) and sqlglot (~7 MB): imported by the code that opens a DuckDB port or
# parses custom SQL, when it runs; the Spark Connect client (pyspark, gRPC) by the first
# Spark statement.
HEAVY = (
    "plotly", "pyarrow", "pandas", "xlsxwriter", "numpy", "duckdb", "sqlglot", "pyspark", "grpc",
)  # fmt: skip

# What `celery -A portal worker` does before it takes a task: the app, Django set up
# through Celery's fixup (with its system checks unless skipped), the task modules.
WORKER_START = """
import json, sys
from portal.celery import app
app.loader.import_default_modules()
print(json.dumps({
    "heavy": sorted(m for m in sys.argv[1:] if m in sys.modules),
    "tasks": sorted(name for name in app.tasks if not name.startswith("celery.")),
}))
"""


def _python(code: str, *args: str) -> str:
    """`code` run in a fresh interpreter with the portal's settings (and the worker's own
    default for system checks); what it printed. Fails the test when it fails."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    env.pop("CELERY_SKIP_CHECKS", None)  # the worker's own default must hold
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _start_worker_imports() -> dict:
    return json.loads(_python(WORKER_START, *HEAVY).strip().splitlines()[-1])


def test_a_starting_worker_loads_its_tasks_without_the_data_libraries():
    started = _start_worker_imports()
    assert "products.tasks.check_run" in started["tasks"], started["tasks"]
    assert any(name.startswith("sharing.") for name in started["tasks"]), started["tasks"]
    assert started["heavy"] == [], started["heavy"]


# The URLs, as a worker loads them the first time an event names a product's page (and
# every web process at start): no view module may pull a data library or a driver in.
URLS_LOADED = """
import json, sys
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns
print(json.dumps(sorted(m for m in sys.argv[1:] if m in sys.modules)))
"""
DRIVERS = ("nats", "pymysql", "adbc_driver_postgresql")


def test_loading_the_urls_loads_no_data_library_or_driver():
    """Before, the URLs brought in pyarrow with numpy (the Delta Sharing protocol), plotly
    (the exports' chart) and nats-py (stream ports, the NATS destination): 166 MB for a
    process that had not served a read yet, 115 MB without them."""
    printed = _python(URLS_LOADED, *HEAVY, *DRIVERS)
    assert json.loads(printed.strip().splitlines()[-1]) == []


# The worker as deploy/ starts it, up to ready: the modules it then holds.
WORKER_READY = """
import json, os, sys
from celery import signals

@signals.worker_ready.connect
def ready(**kwargs):
    loaded = sorted(m for m in sys.argv[1:] if m in sys.modules)
    os.write(1, ("LOADED " + json.dumps(loaded) + "\\n").encode())  # Celery redirects sys.stdout
    os._exit(0)

from portal.worker import main
main(["--pool=solo", "-Q", "worker-imports-test-%d" % os.getpid(), "--loglevel=WARNING"])
"""
CLI_ONLY = ("click_repl", "prompt_toolkit")


def test_the_deployed_worker_starts_without_celerys_command_line_extras():
    printed = _python(WORKER_READY, *CLI_ONLY, *HEAVY)
    lines = [line for line in printed.splitlines() if line.startswith("LOADED ")]
    assert lines, printed[-3000:]
    assert json.loads(lines[-1].removeprefix("LOADED ")) == []
    # Celery's own command line loads them: what `python -m portal.worker` avoids.
    assert "prompt_toolkit" in _python("import sys, celery.bin.celery; print(*sys.modules)").split()
