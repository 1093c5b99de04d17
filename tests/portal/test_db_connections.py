"""Database connections are bounded per process, however many requests arrive: each
process has one psycopg pool (portal/settings.py) of at most DB_POOL_MAX_SIZE
connections. Driven with more concurrent requests than the bound against `make run`'s
stack (`manage.py runstack`: a threaded dev server that starts a thread per request, a
Celery worker and beat) and against gunicorn with deploy/gunicorn.conf.py, counting the
connections PostgreSQL sees from them (pg_stat_activity, by application name) while the
requests run and after. Before the pool, the dev server kept one idle connection per
request thread until PostgreSQL refused clients."""

from __future__ import annotations

import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import connection

from tests.conftest import require_service, subprocess_env, wait_for
from tests.processes import Process, deployed_gunicorn, free_port

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 48
CONCURRENT = 16


def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "the started processes need a shared test database")


class ConnectionCounter:
    """Counts, in a thread of its own, the connections of one application name to the
    test database; keeps the highest count seen."""

    def __init__(self, application_name: str) -> None:
        settings = connection.settings_dict
        self.database = settings["NAME"]
        self.application_name = application_name
        self.conn = psycopg.connect(
            host=settings["HOST"] or "localhost",
            port=settings["PORT"] or 5432,
            user=settings["USER"] or None,
            password=settings["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        )
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def count(self) -> int:
        return self.conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            [self.database, self.application_name],
        ).fetchone()[0]

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.count())
            time.sleep(0.05)

    def __enter__(self) -> ConnectionCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, self.count())

    def close(self) -> None:
        self.conn.close()


def _env(media_root, application_name: str, **extra: str) -> dict[str, str]:
    env = subprocess_env(media_root)
    env["DATABASE_URL"] += f"?application_name={application_name}"
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(extra)
    return env


def _get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _drive(port: int) -> list[int]:
    """REQUESTS requests, CONCURRENT at a time, each one a query on the database."""
    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        return list(pool.map(lambda _: _get(port, "/readyz"), range(REQUESTS)))


def _run(process: Process, port: int, counter: ConnectionCounter) -> tuple[list[int], int]:
    process.start()
    try:
        wait_for(
            lambda: process.running and _get(port, "/readyz") == 200,
            timeout=90,
            interval=0.5,
            message=f"{process.name} did not become ready:\n{process.log()}",
        )
        with counter:
            statuses = _drive(port)
            time.sleep(1)  # idle connections, if any were kept, are still there
        return statuses, counter.count()
    finally:
        process.stop(timeout=30)
        counter.close()


def test_make_run_stack_holds_at_most_its_pools(media_root, tmp_path):
    """runstack: the dev server, a worker of 2 prefork children (and its parent) and beat:
    5 processes of at most 2 connections each."""
    _postgres_only()
    name = f"portal-runstack-{free_port()}"
    port = free_port()
    pool = 2
    bound = (1 + (1 + 2) + 1) * pool
    process = Process(
        "runstack",
        [sys.executable, "manage.py", "runstack", "--port", str(port)],
        env=_env(media_root, name, DEBUG="1", DB_POOL_MAX_SIZE=str(pool)),
        log_dir=tmp_path,
    )
    counter = ConnectionCounter(name)
    statuses, after = _run(process, port, counter)
    assert statuses.count(200) == REQUESTS, statuses
    assert REQUESTS > bound
    assert counter.peak <= bound, (counter.peak, bound)
    assert after <= bound


def test_gunicorn_holds_at_most_processes_times_threads(media_root, tmp_path):
    """deploy/gunicorn.conf.py: 2 processes of 2 threads, a pool as large as the threads
    (DB_POOL_MAX_SIZE unset): at most 4 connections for 48 requests, 16 at a time."""
    _postgres_only()
    name = f"portal-gunicorn-{free_port()}"
    port = free_port()
    env = _env(
        media_root,
        name,
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_PROXY_SSL_HEADER="1",
        PORT=str(port),
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    env.pop("DB_POOL_MAX_SIZE", None)
    process = deployed_gunicorn(env=env, log_dir=tmp_path)
    counter = ConnectionCounter(name)
    statuses, after = _run(process, port, counter)
    assert statuses.count(200) == REQUESTS, statuses
    assert counter.peak <= 2 * 2, counter.peak
    assert after <= 2 * 2
