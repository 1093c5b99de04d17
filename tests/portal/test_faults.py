"""Faults a production portal meets, each on real processes: Redis stopping while the site
serves, PostgreSQL restarting under running web and worker processes, a worker killed in
the middle of a check run, and two beat processes started by mistake."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from products.choices import CheckKind, CheckRunStatus, CheckTrigger, SourceKind
from products.models import CheckRun
from products.trust.services.checks import check_create, check_run_reap
from tests.conftest import require_service, subprocess_env, wait_for
from tests.factories import (
    PASSWORD,
    DataSourceFactory,
    FilePortFactory,
    OutputPortFactory,
    ProductFactory,
)
from tests.processes import (
    WebClient,
    celery_beat,
    celery_worker,
    free_port,
    gunicorn,
    manage,
    redis_server,
    start_redis,
    wait_until_ready,
)

pytestmark = pytest.mark.worker


def _emails_port(domain, media_root, name="faults"):
    path = media_root / name / "emails.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"email": pa.array(["a@x", None, None, "d@x"], pa.string())}), path)
    product = ProductFactory(domain=domain)
    return FilePortFactory(product=product, file_path=f"{name}/emails.parquet")


def _private_redis_env(media_root, tmp_path, **extra):
    port = free_port()
    redis = start_redis(redis_server(port=port, log_dir=tmp_path), port)
    env = subprocess_env(media_root) | {
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/1",
        "DEBUG": "1",
        **extra,
    }
    return redis, port, env


def _logs(*processes) -> str:
    return "\n".join(f"--- {p.name} ---\n{p.log()[-4000:]}" for p in processes)


@pytest.mark.django_db(transaction=True)
def test_redis_outage_keeps_pages_and_reads_answering_and_queued_work_runs_when_back(
    domain, owner, media_root, tmp_path
):
    port = _emails_port(domain, media_root)
    check_create(port=port, by=owner, name="email", kind=CheckKind.NOT_NULL, column="email")
    product = port.product
    # The reapers look every 5 s instead of every minute: the run is re-sent soon after
    # Redis is back, by the same beat-sent reaper that production relies on.
    redis, redis_port, env = _private_redis_env(
        media_root, tmp_path, TASK_REDISPATCH_SECONDS="2", REAPER_INTERVAL_SECONDS="5"
    )
    web_port = free_port()
    web = gunicorn(env=env, port=web_port, log_dir=tmp_path).start()
    worker = celery_worker(env=env, log_dir=tmp_path).start()
    beat = celery_beat(env=env, log_dir=tmp_path).start()
    processes = (web, worker, beat, redis)
    try:
        wait_until_ready(web, port=web_port)
        wait_until_ready(worker)
        site = WebClient(f"http://127.0.0.1:{web_port}")
        site.sign_in(owner.username, PASSWORD)
        api = WebClient(f"http://127.0.0.1:{web_port}")
        api.api_sign_in(owner.username, PASSWORD)
        pages = [
            "/",
            f"/search/?q={product.name.split()[0]}",
            f"/products/{domain.slug}/{product.slug}/",
            f"/products/{domain.slug}/{product.slug}/quality/",
        ]
        for path in pages:
            assert site.get(path)[0] == 200, path

        redis.stop()
        wait_for(lambda: not redis.running, timeout=10)

        # Pages and API reads still answer: the cache degrades to misses.
        for path in pages:
            status, _, body = site.get(path)
            assert status == 200, (path, body[:300], _logs(web))
        status, _, listing = api.api("GET", "/api/v1/products/")
        assert status == 200 and listing["count"] >= 1
        # Work that needs the broker is saved as queued, and the client is told.
        status, headers, run = api.api(
            "POST", f"/api/v1/products/{product.key}/check-runs/", {"port": port.slug}
        )
        assert status == 202, run
        assert headers.get("X-Task-Queue") == "unavailable"
        assert run["status"] == CheckRunStatus.QUEUED
        status, _, body = site.get(f"/products/{domain.slug}/{product.slug}/quality/")
        assert status == 200 and b"task queue is unavailable" in body

        # Redis comes back: the reaper (sent by beat) sends the queued run again.
        start_redis(redis, redis_port)
        queued = CheckRun.objects.get(pk=run["id"])

        def finished():
            queued.refresh_from_db()
            return queued.status in (CheckRunStatus.DONE, CheckRunStatus.ERROR)

        wait_for(finished, timeout=180, interval=1, message=_logs(*processes))
        assert queued.status == CheckRunStatus.DONE, queued.error
        assert queued.results.get().observed_value == 2
    finally:
        for process in processes:
            process.stop()


# --- PostgreSQL restart ------------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb as the postgres user), so that the
    test may restart it without disturbing anything else."""

    def __init__(self) -> None:
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not versions or shutil.which("runuser") is None or os.geteuid() != 0:
            require_service("PostgreSQL", "initdb, runuser and root are needed for a cluster")
        self.bin = versions[-1].parent
        self.dir = Path(tempfile.mkdtemp(prefix="portal-pg-"))
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/portal"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        if not self.data.exists():
            self._as_postgres(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            )
        self._as_postgres(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "log"),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
            "-w",
            "start",
        )

    def restart(self) -> None:
        self._as_postgres(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "log"),
            "-m",
            "fast",
            "-w",
            "restart",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
        )

    def stop(self) -> None:
        try:
            self._as_postgres(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"
            )
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


SETUP_SCRIPT = """
import pyarrow as pa, pyarrow.parquet as pq
from django.conf import settings
from pathlib import Path
from products.choices import CheckKind, LifecycleStatus, MembershipRole
from products.trust.services.checks import check_create
from tests.factories import DomainFactory, FilePortFactory, MembershipFactory, ProductFactory
path = Path(settings.MEDIA_ROOT) / "restart" / "emails.parquet"
path.parent.mkdir(parents=True, exist_ok=True)
pq.write_table(pa.table({"email": pa.array(["a@x", None, "c@x"], pa.string())}), path)
domain = DomainFactory(slug="ops", name="Ops")
owner = MembershipFactory(domain=domain, role=MembershipRole.OWNER, user__username="ops-owner").user
product = ProductFactory(domain=domain, slug="emails", name="Emails")
port = FilePortFactory(product=product, file_path="restart/emails.parquet", slug="emails")
check_create(port=port, by=owner, name="email", kind=CheckKind.NOT_NULL, column="email")
"""


def test_postgresql_restart_needs_no_restart_of_web_or_worker(media_root, tmp_path):
    cluster = PrivatePostgres()
    redis = web = worker = None
    try:
        cluster.start()
        subprocess.run(
            [
                str(cluster.bin / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(cluster.port),
                "-U",
                "postgres",
                "portal",
            ],
            check=True,
            capture_output=True,
        )
        redis, _, env = _private_redis_env(media_root, tmp_path)
        env["DATABASE_URL"] = cluster.url
        for command in (["migrate", "--noinput"], ["shell", "-c", SETUP_SCRIPT]):
            manage(*command, env=env, timeout=300)
        web_port = free_port()
        web = gunicorn(env=env, port=web_port, log_dir=tmp_path).start()
        worker = celery_worker(env=env, log_dir=tmp_path).start()
        wait_until_ready(web, port=web_port)
        wait_until_ready(worker)
        site = WebClient(f"http://127.0.0.1:{web_port}")
        site.sign_in("ops-owner", PASSWORD)
        api = WebClient(f"http://127.0.0.1:{web_port}")
        api.api_sign_in("ops-owner", PASSWORD)
        assert site.get("/products/ops/emails/")[0] == 200
        status, _, first = api.api("POST", "/api/v1/products/ops.emails/check-runs/")
        assert status == 202, first

        def run_done(run_id):
            def done():
                status, _, run = api.api("GET", f"/api/v1/products/ops.emails/check-runs/{run_id}/")
                return run if status == 200 and run["status"] in ("done", "error") else None

            return done

        assert wait_for(run_done(first["id"]), timeout=60)["status"] == "done"

        cluster.restart()

        # The very next requests succeed: connections are checked before use.
        status, _, body = site.get("/products/ops/emails/")
        assert status == 200, (body[:500], _logs(web))
        status, _, listing = api.api("GET", "/api/v1/products/")
        assert status == 200 and listing["count"] == 1
        # So does the worker's next task, on the same worker process.
        status, _, second = api.api("POST", "/api/v1/products/ops.emails/check-runs/")
        assert status == 202, second
        run = wait_for(run_done(second["id"]), timeout=60, message=_logs(web, worker))
        assert run["status"] == "done", (run, _logs(worker))
        assert web.running and worker.running
    finally:
        for process in (web, worker, redis):
            if process is not None:
                process.stop()
        cluster.stop()


# --- a worker killed during a check run ----------------------------------------------------


def _slow_pg_port(postgres, domain):
    cfg = postgres.settings_dict
    dsn = {
        "host": cfg["HOST"] or "localhost",
        "port": int(cfg["PORT"] or 5432),
        "dbname": cfg["NAME"],
        "user": cfg["USER"] or None,
    }
    with psycopg.connect(**{k: v for k, v in dsn.items() if v}, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS faults")
        conn.execute("DROP TABLE IF EXISTS faults.events")
        conn.execute("CREATE TABLE faults.events (id bigint, email text)")
        conn.execute("INSERT INTO faults.events VALUES (1, 'a@x'), (2, NULL)")
        # 48 more rows with an email: enough for a slow custom check (pg_sleep is refused).
        conn.execute("INSERT INTO faults.events SELECT n, 'e@x' FROM generate_series(3, 50) n")
    source = DataSourceFactory(
        kind=SourceKind.POSTGRESQL,
        path="",
        host=dsn["host"],
        port=dsn["port"],
        database=dsn["dbname"],
        username=cfg["USER"] or "",
    )
    return OutputPortFactory(
        product=ProductFactory(domain=domain),
        source=source,
        schema_name="faults",
        table_name="events",
    )


@pytest.mark.django_db(transaction=True)
def test_worker_killed_during_a_check_run_leaves_no_partial_result(
    postgres, domain, owner, media_root, tmp_path
):
    port = _slow_pg_port(postgres, domain)
    check_create(port=port, by=owner, name="email", kind=CheckKind.NOT_NULL, column="email")
    check_create(
        port=port,
        by=owner,
        name="slow",
        kind=CheckKind.CUSTOM_SQL,
        # 50**6 combinations: runs until the custom SQL time limit stops it.
        params={
            "sql": "SELECT count(*) FROM {table} a, {table} b, {table} c, {table} d, "
            "{table} e, {table} f WHERE (a.id + b.id * 2 + c.id * 3 + d.id * 5 + e.id * 7 "
            "+ f.id * 11) % 13 = 1"
        },
    )
    redis, _, env = _private_redis_env(media_root, tmp_path)
    worker = celery_worker(env=env, log_dir=tmp_path).start()
    replacement = celery_worker(env=env, log_dir=tmp_path, name="replacement")
    try:
        wait_until_ready(worker)
        from portal.celery import app

        run = CheckRun.objects.create(port=port, requested_by=owner)
        with app.connection_for_write(env["CELERY_BROKER_URL"]) as connection:
            app.send_task("products.tasks.check_run", args=[run.pk], connection=connection)

        def running():
            run.refresh_from_db()
            return run.status == CheckRunStatus.RUNNING

        wait_for(running, timeout=60, message=_logs(worker))
        time.sleep(2)  # inside the slow custom SQL statement
        worker.kill()

        # Nothing of the killed run was written; after the timeout the reaper ends it.
        run.refresh_from_db()
        assert run.status == CheckRunStatus.RUNNING and run.results.count() == 0
        later = timezone.now() + postgres_timeout() + timedelta(minutes=1)
        assert check_run_reap(now=later) == 1
        run.refresh_from_db()
        assert run.status == CheckRunStatus.ERROR and "worker stopped" in run.error
        assert run.results.count() == 0
        assert not CheckRun.objects.filter(status=CheckRunStatus.RUNNING).exists()

        # After recovery, a new run on a new worker gives exactly one result per check.
        replacement.start()
        wait_until_ready(replacement)
        again = CheckRun.objects.create(port=port, requested_by=owner)
        with app.connection_for_write(env["CELERY_BROKER_URL"]) as connection:
            app.send_task("products.tasks.check_run", args=[again.pk], connection=connection)

        def finished():
            again.refresh_from_db()
            return again.is_finished

        wait_for(finished, timeout=60, message=_logs(replacement))
        assert again.status == CheckRunStatus.DONE, again.error
        results = list(again.results.select_related("quality_check"))
        assert sorted(r.quality_check.name for r in results) == ["email", "slow"]
        assert next(r for r in results if r.quality_check.name == "email").observed_value == 1
    finally:
        for process in (worker, replacement, redis):
            process.stop()


def postgres_timeout():
    from django.conf import settings

    return settings.CHECK_RUN_TIMEOUT


# --- two beats ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_beat_processes_never_run_a_schedule_slot_twice(domain, owner, media_root, tmp_path):
    port = _emails_port(domain, media_root, name="beats")
    check_create(
        port=port,
        by=owner,
        name="email",
        kind=CheckKind.NOT_NULL,
        column="email",
        schedule="* * * * *",
    )
    redis, _, env = _private_redis_env(media_root, tmp_path)
    worker = celery_worker(env=env, log_dir=tmp_path).start()
    beats = [celery_beat(env=env, log_dir=tmp_path, name=f"beat-{n}").start() for n in (1, 2)]
    processes = (worker, *beats, redis)
    try:
        wait_until_ready(worker)
        runs = CheckRun.objects.filter(port=port, trigger=CheckTrigger.SCHEDULE)

        def sends(beat) -> int:
            return sum(
                "Sending due task" in line and "checks_run_scheduled" in line
                for line in beat.log().splitlines()
            )

        def handled() -> int:
            return sum(
                "checks_run_scheduled[" in line and "succeeded" in line
                for line in worker.log().splitlines()
            )

        def both_beats_sent_two_slots_and_every_send_was_handled():
            # Each beat starts in its own time (slow under load): wait until each has sent
            # two slots, and the worker has handled every send (the second beat's send of
            # a slot is the one that must find the slot taken), then count the runs.
            sent = [sends(beat) for beat in beats]
            done = runs.filter(status=CheckRunStatus.DONE).values("slot").distinct().count()
            return min(sent) >= 2 and handled() >= sum(sent) and done >= 2

        wait_for(
            both_beats_sent_two_slots_and_every_send_was_handled,
            timeout=300,
            interval=1,
            message=_logs(*processes),
        )
        for beat in beats:
            assert beat.running, beat.log()
        # Both beats sent every slot (two sends a minute), yet one run per slot.
        slots = list(runs.values_list("slot", flat=True))
        assert len(slots) == len(set(slots)), slots
    finally:
        for process in processes:
            process.stop()
