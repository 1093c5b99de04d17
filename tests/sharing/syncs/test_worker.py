"""A sync run on real Celery workers: a worker killed with SIGKILL mid-run (after some
batches were acknowledged) leaves the state equal to what the destination holds; the
reaper queues the same run again, another worker resumes it, and every record ends in
the destination exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from sharing.models import SyncRecordState, SyncRun
from sharing.models.syncs import SyncRunStatus
from sharing.syncs.services.runs import sync_runs_reap
from sharing.syncs.services.syncs import sync_create
from sharing.syncs.tasks import sync_run
from tests.conftest import ROOT, subprocess_env, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROWS = 60_000  # three batches of the table writer (20,000 records each)


def _finished(run: SyncRun):
    run.refresh_from_db()
    return run if run.status not in (SyncRunStatus.QUEUED, SyncRunStatus.RUNNING) else None


def test_a_worker_killed_mid_run_resumes_and_sends_every_record_once(
    celery_worker, leads, crm, crm_table, source_table, owner, media_root, tmp_path, settings
):
    source_table.execute("TRUNCATE {table}")
    source_table.execute(
        "INSERT INTO {table} SELECT i, 'user' || i || '@x', 'BE', i / 1000.0, i % 500 "
        f"FROM generate_series(1, {ROWS}) AS i"
    )
    # Each applied record counted once: an insert, or an update that changes something (a
    # batch sent again with the same values is not applied twice). Each batch is slow, so
    # the worker can be killed between batches.
    crm_table.execute(
        "CREATE TABLE syncs_dst.applied (lead_id bigint, at timestamptz DEFAULT now())"
    )
    crm_table.execute(
        "CREATE FUNCTION syncs_dst.count_applied() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN INSERT INTO syncs_dst.applied (lead_id) VALUES (NEW.lead_id); RETURN NEW; "
        "END $$"
    )
    crm_table.execute(
        "CREATE FUNCTION syncs_dst.slow_batch() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END $$"
    )
    crm_table.execute(
        "CREATE TRIGGER applied_insert AFTER INSERT ON {table} FOR EACH ROW "
        "EXECUTE FUNCTION syncs_dst.count_applied()"
    )
    crm_table.execute(
        "CREATE TRIGGER applied_update AFTER UPDATE ON {table} FOR EACH ROW "
        "WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION syncs_dst.count_applied()"
    )
    crm_table.execute(
        "CREATE TRIGGER slow_batch AFTER INSERT OR UPDATE ON {table} FOR EACH STATEMENT "
        "EXECUTE FUNCTION syncs_dst.slow_batch()"
    )
    try:
        sync = sync_create(
            by=owner,
            product=leads,
            destination=crm,
            name="Leads to CRM",
            columns=["lead_id", "email", "score", "bid"],
            key_columns=["lead_id"],
        )
        run = SyncRun.objects.create(sync=sync, requested_by=owner)
        queue = f"syncs-kill-{os.getpid()}"
        log_path = tmp_path / "doomed-worker.log"
        with open(log_path, "w") as log:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "worker",
                    "--pool=solo",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "-Q",
                    queue,
                    "-n",
                    f"sync-kill-{os.getpid()}@%h",
                ],
                cwd=ROOT,
                env=subprocess_env(media_root),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                sync_run.apply_async((run.pk,), queue=queue)  # to the worker about to die

                def one_batch_acked():
                    run.refresh_from_db()
                    return run.status == SyncRunStatus.RUNNING and 0 < run.added < ROWS

                wait_for(
                    one_batch_acked,
                    timeout=120,
                    interval=0.05,
                    message=f"no batch was acknowledged:\n{log_path.read_text()}",
                )
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait(timeout=20)
            finally:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()

        run.refresh_from_db()
        assert run.status == SyncRunStatus.RUNNING and run.attempts == 1
        acked = SyncRecordState.objects.filter(sync=sync).count()
        assert 0 < acked < ROWS and acked == run.added
        # The state is what the destination acknowledged: every key it holds is in the CRM.
        assert crm_table.rows("count(*)", "1")[0][0] == acked

        later = timezone.now() + settings.SYNC_HEARTBEAT_TIMEOUT + timedelta(seconds=1)
        assert sync_runs_reap(now=later) == 1
        run = wait_for(lambda: _finished(run), timeout=180, message="the resumed run hung")
        assert run.status == SyncRunStatus.SUCCEEDED, run.error
        assert run.attempts == 2 and run.detail["lost_attempts"][0]["attempt"] == 1
        assert run.added == ROWS  # the same run: its counts carry on
        assert crm_table.rows("count(*), count(DISTINCT lead_id)", "1")[0] == (ROWS, ROWS)
        assert _applied_counts(crm_table) == (ROWS, ROWS)  # each record applied once
        assert SyncRecordState.objects.filter(sync=sync).count() == ROWS
    finally:
        crm_table.execute("DROP TABLE IF EXISTS syncs_dst.applied")
        crm_table.execute("DROP TABLE IF EXISTS {table}")
        crm_table.execute("DROP FUNCTION IF EXISTS syncs_dst.count_applied()")
        crm_table.execute("DROP FUNCTION IF EXISTS syncs_dst.slow_batch()")


def _applied_counts(crm_table) -> tuple[int, int]:
    with psycopg.connect(**crm_table.info, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT lead_id) FROM syncs_dst.applied"
        ).fetchone()
