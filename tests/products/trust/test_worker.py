"""Check runs on real Celery processes: on demand through a worker on Redis, on schedule
through beat (django-celery-beat) and the worker; dead runs are reaped."""

import subprocess
import sys
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from products.choices import CheckKind, CheckOutcome, CheckRunStatus, CheckTrigger
from products.models import CheckRun
from products.trust.services.checks import check_create, check_run_reap, check_run_request
from tests.conftest import ROOT, subprocess_env, wait_for
from tests.factories import FilePortFactory, ProductFactory


@pytest.fixture
def nulls_port(domain, media_root):
    path = media_root / "worker" / "emails.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"email": pa.array(["a@x", None, None, "d@x"], pa.string())}), path)
    return FilePortFactory(product=ProductFactory(domain=domain), file_path="worker/emails.parquet")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_run_now_is_executed_by_a_worker(celery_worker, nulls_port, owner):
    check_create(port=nulls_port, by=owner, name="email", kind=CheckKind.NOT_NULL, column="email")
    run = check_run_request(port=nulls_port, by=owner)

    def finished():
        run.refresh_from_db()
        return run.is_finished

    wait_for(finished, timeout=60, message="the worker did not finish the check run")
    assert run.status == CheckRunStatus.DONE, run.error
    result = run.results.get()
    assert (result.outcome, result.observed_value) == (CheckOutcome.FAIL, 2)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_beat_runs_scheduled_checks_once_per_slot(
    celery_worker, nulls_port, owner, media_root, tmp_path
):
    check_create(
        port=nulls_port,
        by=owner,
        name="email",
        kind=CheckKind.NOT_NULL,
        column="email",
        schedule="* * * * *",
    )
    env = subprocess_env(media_root)
    log = open(tmp_path / "beat.log", "w")  # noqa: SIM115 - closed below
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "beat",
            "--loglevel=INFO",
            "--pidfile=",
            "--max-interval=5",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        runs = CheckRun.objects.filter(port=nulls_port, trigger=CheckTrigger.SCHEDULE)

        def scheduled_run_done():
            return runs.filter(status=CheckRunStatus.DONE).first()

        run = wait_for(
            scheduled_run_done,
            timeout=150,
            interval=1,
            message=f"beat did not run the checks:\n{(tmp_path / 'beat.log').read_text()}",
        )
    finally:
        beat.terminate()
        beat.wait(timeout=20)
        log.close()
    assert run.slot.startswith("* * * * *@")
    assert run.results.get().observed_value == 2
    # One run per slot: every scheduled run has its own minute.
    slots = list(runs.values_list("slot", flat=True))
    assert len(slots) == len(set(slots))


def test_reaper_ends_runs_whose_worker_died(nulls_port, settings):
    stuck = CheckRun.objects.create(
        port=nulls_port,
        status=CheckRunStatus.RUNNING,
        started_at=timezone.now() - settings.CHECK_RUN_TIMEOUT - timedelta(minutes=1),
    )
    fresh = CheckRun.objects.create(
        port=nulls_port, status=CheckRunStatus.RUNNING, started_at=timezone.now()
    )
    assert check_run_reap() == 1
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == CheckRunStatus.ERROR and "worker stopped" in stuck.error
    assert fresh.status == CheckRunStatus.RUNNING
