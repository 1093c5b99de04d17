"""Scheduled exports on real Celery processes on Redis: beat fires schedules and the
worker writes their files (rows equal to the source, masking applied, the quality gate
holding); a slot delivered twice is one run; a worker killed with SIGKILL mid-export
leaves no partial file, and after recovery there is exactly one complete file."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from products.choices import CheckKind
from products.trust.services.checks import check_create
from sharing.choices import ExportStatus, ExportTrigger
from sharing.exports.services.runs import (
    PARTIAL_SUFFIX,
    export_run_for_slot,
    export_run_request,
    export_runs_reap,
    export_schedule_create,
)
from sharing.exports.tasks import export_run, export_schedule_fire
from sharing.models import ExportRun
from tests.conftest import ROOT, subprocess_env, wait_for
from tests.factories import parquet_product
from tests.sharing.exports.helpers import ROWS, files_of, grant, read_back

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _finished(run: ExportRun):
    run.refresh_from_db()
    return run if run.status not in (ExportStatus.QUEUED, ExportStatus.RUNNING) else None


def _start(args: list[str], env: dict, log_path: Path) -> tuple[subprocess.Popen, object]:
    log = open(log_path, "w")  # noqa: SIM115 - closed by the caller
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", *args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, log


def _stop(process: subprocess.Popen, log) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.close()


def test_beat_fires_schedules_and_the_worker_writes_them(
    celery_worker, orders, owner, outsider, media_root, tmp_path
):
    # Three schedules firing every minute: the owner's (Parquet, in Paris time), a
    # grantee's (CSV: their row filter and masking, plus the schedule's), and one held
    # by the quality gate.
    grant(orders, outsider, row_filter=[{"column": "country", "op": "in", "value": ["BE"]}])
    plain = export_schedule_create(
        product=orders,
        by=owner,
        name="every minute",
        cron="* * * * *",
        timezone="Europe/Paris",
        format="parquet",
    )
    masked = export_schedule_create(
        product=orders,
        by=outsider,
        name="mine",
        cron="* * * * *",
        format="csv",
        columns=["order_id", "email", "amount"],
        masked_columns=["amount"],
    )
    gated = export_schedule_create(
        product=orders,
        by=owner,
        name="gated",
        cron="* * * * *",
        format="jsonl",
        quality_gate=True,
    )
    check_create(
        port=orders.ports.get(), by=owner, name="emails", kind=CheckKind.NOT_NULL, column="email"
    )

    beat, log = _start(
        ["beat", "--loglevel=INFO", "--pidfile=", "--max-interval=5"],
        subprocess_env(media_root),
        tmp_path / "beat.log",
    )
    try:

        def all_fired():
            done = {
                schedule.pk: ExportRun.objects.filter(
                    schedule=schedule,
                    trigger=ExportTrigger.SCHEDULE,
                    status__in=(ExportStatus.SUCCEEDED, ExportStatus.HELD, ExportStatus.FAILED),
                ).first()
                for schedule in (plain, masked, gated)
            }
            return done if all(done.values()) else None

        runs = wait_for(
            all_fired,
            timeout=150,
            interval=1,
            message=f"beat did not fire the exports:\n{(tmp_path / 'beat.log').read_text()}",
        )
    finally:
        _stop(beat, log)

    run = runs[plain.pk]
    assert run.status == ExportStatus.SUCCEEDED, run.error
    assert read_back(run) == ROWS
    assert run.slot.endswith(("+01:00", "+02:00"))  # the slot is in Paris time

    run = runs[masked.pk]
    assert run.status == ExportStatus.SUCCEEDED, run.error
    assert read_back(run) == {
        "order_id": [1, 3, 6],
        "email": ["****", None, "****"],
        "amount": ["****", "****", "****"],
    }

    run = runs[gated.pk]
    assert run.status == ExportStatus.HELD
    assert "emails" in run.error and not run.file_name
    assert files_of(gated.pk) == []

    for schedule in (plain, masked, gated):
        slots = list(schedule.runs.values_list("slot", flat=True))
        assert len(slots) == len(set(slots))  # one run per slot


def test_a_slot_delivered_twice_is_one_run(celery_worker, orders, owner):
    # A daily cron twelve hours away: both deliveries fall in the same slot.
    hour = (timezone.now().hour + 12) % 24
    schedule = export_schedule_create(
        product=orders, by=owner, name="daily", cron=f"0 {hour} * * *", format="csv"
    )
    export_schedule_fire.delay(schedule.pk)
    export_schedule_fire.delay(schedule.pk)
    run = wait_for(
        lambda: schedule.runs.filter(status=ExportStatus.SUCCEEDED).first(),
        timeout=60,
        message="the worker did not write the export",
    )
    time.sleep(2)  # the second delivery has had time to do whatever it would
    assert schedule.runs.count() == 1
    assert run.attempts == 1 and len(files_of(schedule.pk)) == 1


def test_run_now_through_the_worker(celery_worker, orders, owner):
    schedule = export_schedule_create(
        product=orders, by=owner, name="now", cron="0 6 * * *", format="xlsx"
    )
    run = export_run_request(schedule=schedule, by=owner)
    run = wait_for(lambda: _finished(run), timeout=60, message="the run did not finish")
    assert run.status == ExportStatus.SUCCEEDED, run.error
    assert read_back(run) == ROWS


@pytest.fixture
def big_orders(domain, media_root):
    """Enough rows that writing them as JSON lines takes several seconds."""
    count = 1_500_000
    return parquet_product(
        media_root=media_root,
        domain=domain,
        rows={
            "order_id": pa.array(range(count), pa.int64()),
            "country": pa.array(["BE", "NL", "FR"] * (count // 3)),
            "amount": pa.array([i / 100 for i in range(count)], pa.float64()),
        },
        file_path="export-src/big-orders.parquet",
        slug="big-orders",
        sensitive=(),
    )


def test_a_worker_killed_mid_export_leaves_one_complete_file_after_recovery(
    celery_worker, big_orders, owner, media_root, tmp_path, settings
):
    queue = f"exports-kill-{os.getpid()}"
    worker, log = _start(
        [
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "-Q",
            queue,
            "-n",
            f"kill-{os.getpid()}@%h",
        ],
        subprocess_env(media_root),
        tmp_path / "doomed-worker.log",
    )
    try:
        schedule = export_schedule_create(
            product=big_orders, by=owner, name="big", cron="0 6 * * *", format="jsonl"
        )
        run = export_run_for_slot(schedule=schedule, at=timezone.now())
        export_run.apply_async((run.pk,), queue=queue)  # to the worker about to die only
        folder = Path(default_storage.path(f"exports/{schedule.pk}"))

        def writing():
            run.refresh_from_db()
            partials = list(folder.glob(f".*{PARTIAL_SUFFIX}")) if folder.is_dir() else []
            return run.status == ExportStatus.RUNNING and partials and partials[0].stat().st_size

        log_path = tmp_path / "doomed-worker.log"
        wait_for(
            writing,
            timeout=90,
            interval=0.05,
            message=f"the export never started writing:\n{log_path.read_text()}",
        )
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=20)
    finally:
        _stop(worker, log)

    run.refresh_from_db()
    assert run.status == ExportStatus.RUNNING and run.attempts == 1  # nobody finished it
    assert not run.file_name
    names = [path.name for path in folder.iterdir()]
    assert len(names) == 1 and names[0].endswith(PARTIAL_SUFFIX)  # hidden, never announced

    # The reaper, once the heartbeat is old enough, removes the partial file and queues
    # the run again; the other worker (the session's) finishes it.
    later = timezone.now() + settings.EXPORT_HEARTBEAT_TIMEOUT + timedelta(seconds=1)
    result = export_runs_reap(now=later)
    assert result.retried == 1
    run = wait_for(lambda: _finished(run), timeout=120, message="the retried run did not finish")
    assert run.status == ExportStatus.SUCCEEDED, run.error
    assert run.attempts == 2 and run.detail["lost_attempts"][0]["attempt"] == 1
    files = list(folder.iterdir())
    assert [path.name for path in files] == [Path(run.file_name).name]  # one file, complete
    data = files[0].read_bytes()
    assert hashlib.sha256(data).hexdigest() == run.sha256 and len(data) == run.bytes
    assert data.count(b"\n") == run.rows == 1_500_000
