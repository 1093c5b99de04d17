"""Scheduled exports, executed in this process: schedules are validated and kept in
django-celery-beat, one run per cron slot, every format's file holds the source's rows,
masking and the creator's access apply, the quality gate holds, XLSX beyond its limit
and a full disk fail without leaving a file, retention prunes, the reaper recovers."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from products.choices import CheckKind, Severity
from products.models import CheckRun
from products.trust.services.checks import check_create
from sharing.choices import XLSX_MAX_ROWS, Channel, ExportStatus
from sharing.exports.services.runs import (
    export_run_execute,
    export_run_for_slot,
    export_run_request,
    export_runs_prune,
    export_runs_reap,
    export_schedule_create,
    export_schedule_end,
    export_schedule_update,
    temp_folder,
    temp_name,
)
from sharing.models import AccessEvent, ExportRun
from tests.factories import parquet_product
from tests.sharing.exports.helpers import ROWS, files_of, grant, read_back


def _schedule(product, by, **fields):
    fields = {"name": "Nightly", "cron": "0 6 * * *", "format": "csv", **fields}
    return export_schedule_create(product=product, by=by, **fields)


def _run_now(schedule, by) -> ExportRun:
    run = export_run_request(schedule=schedule, by=by)
    result = export_run_execute(run_id=run.pk)
    assert result is not None
    return result


# --- schedules ---------------------------------------------------------------------------


def test_bad_input_is_refused_naming_the_field(orders, owner):
    cases = [
        ({"cron": "0 25 * * *"}, "cron", "hour field '25'"),
        ({"cron": "0 6 * *"}, "cron", "5 fields"),
        ({"cron": "0 6 * * mon-foo"}, "cron", "day-of-week field"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Unknown time zone"),
        ({"columns": ["order_id", "nope"]}, "columns", "nope"),
        ({"row_filter": '[{"column": "country", "op": "~"}]'}, "row_filter", "operator"),
        ({"format": "arrow"}, "format", "csv, parquet, xlsx, jsonl"),
        ({"retention_runs": 0}, "retention_runs", "from 1"),
        ({"port": "missing"}, "port", "no output port 'missing'"),
        ({"name": " "}, "name", "name"),
    ]
    for fields, field, words in cases:
        with pytest.raises(ValidationError) as error:
            _schedule(orders, owner, **fields)
        assert words in error.value.message_dict[field][0], (fields, error.value.message_dict)
    assert not orders.export_schedules.exists()
    assert not PeriodicTask.objects.filter(name__startswith="exports:").exists()


def test_who_may_schedule_and_within_which_access(orders, outsider, member):
    with pytest.raises(PermissionDenied):
        _schedule(orders, outsider)
    grant(orders, outsider, columns=["order_id", "country"])
    with pytest.raises(ValidationError) as error:
        _schedule(orders, outsider, columns=["order_id", "amount"])
    assert "amount" in error.value.message_dict["columns"][0]
    with pytest.raises(ValidationError) as error:
        _schedule(orders, outsider, row_filter=[{"column": "amount", "op": ">", "value": 1}])
    assert "outside" in error.value.message_dict["row_filter"][0]
    assert _schedule(orders, outsider, columns=["order_id"]).created_by == outsider
    assert _schedule(orders, member).created_by == member  # members read everything
    # Someone else's schedule: only its creator and the domain's managers change it.
    schedule = _schedule(orders, member, name="Member's")
    with pytest.raises(PermissionDenied):
        export_schedule_update(schedule=schedule, by=outsider, name="Mine now")
    with pytest.raises(PermissionDenied):
        export_run_request(schedule=schedule, by=outsider)


def test_a_schedule_is_one_beat_task_in_its_time_zone(orders, owner):
    schedule = _schedule(orders, owner, cron="30 7 * * 1-5", timezone="Europe/Brussels")
    task = PeriodicTask.objects.get(name=f"exports:schedule:{schedule.pk}")
    assert schedule.periodic_task == task
    assert task.task == "sharing.export_tasks.export_schedule_fire"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "7", "1-5")
    assert str(task.crontab.timezone) == "Europe/Brussels"
    assert task.enabled

    export_schedule_update(schedule=schedule, by=owner, cron="0 8 * * *", timezone="UTC")
    task.refresh_from_db()
    assert (task.crontab.hour, str(task.crontab.timezone)) == ("8", "UTC")
    assert PeriodicTask.objects.filter(name__startswith="exports:").count() == 1

    export_schedule_update(schedule=schedule, by=owner, enabled=False)
    assert not PeriodicTask.objects.filter(name__startswith="exports:").exists()
    export_schedule_update(schedule=schedule, by=owner, enabled=True)
    assert PeriodicTask.objects.filter(name__startswith="exports:").count() == 1
    export_schedule_end(schedule=schedule, by=owner)
    assert not PeriodicTask.objects.filter(name__startswith="exports:").exists()
    with pytest.raises(ValidationError):
        export_run_request(schedule=schedule, by=owner)


def test_one_run_per_slot_in_the_schedule_time_zone(orders, owner):
    schedule = _schedule(orders, owner, cron="0 6 * * *", timezone="Europe/Brussels")
    fired = datetime(2026, 6, 1, 4, 0, 3, tzinfo=UTC)  # 06:00:03 in Brussels (summer)
    run = export_run_for_slot(schedule=schedule, at=fired)
    assert run.slot == "2026-06-01T06:00:00+02:00"
    # The same slot delivered again (a duplicate message, beat restarted): no new run.
    assert export_run_for_slot(schedule=schedule, at=fired + timedelta(seconds=40)) is None
    following = export_run_for_slot(schedule=schedule, at=fired + timedelta(days=1))
    assert following.slot == "2026-06-02T06:00:00+02:00"
    assert schedule.runs.count() == 2


# --- formats -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "xlsx"])
def test_every_format_holds_the_source_rows(orders, owner, fmt):
    schedule = _schedule(orders, owner, format=fmt)
    run = _run_now(schedule, owner)
    assert run.status == ExportStatus.SUCCEEDED, run.error
    assert read_back(run) == ROWS
    data = default_storage.open(run.file_name, "rb").read()
    assert (run.rows, run.bytes, run.sha256) == (6, len(data), hashlib.sha256(data).hexdigest())
    assert run.file_name.endswith(f"-run{run.pk}.{fmt}")
    assert [path.name for path in files_of(schedule.pk)] == [Path(run.file_name).name]
    assert run.started_at <= run.finished_at and run.attempts == 1
    event = AccessEvent.objects.get(channel=Channel.EXPORT)
    assert (event.user, event.rows, event.detail["export_run"]) == (owner, 6, run.pk)


def test_parquet_row_groups_hold_hundreds_of_thousands_of_rows(domain, media_root, owner):
    count = 1_200_000
    product = parquet_product(
        media_root=media_root,
        domain=domain,
        rows={"n": pa.array(range(count), pa.int64())},
        file_path="export-src/many.parquet",
        slug="many",
        sensitive=(),
    )
    run = _run_now(_schedule(product, owner, format="parquet"), owner)
    metadata = pq.ParquetFile(default_storage.path(run.file_name)).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(sizes) == count == run.rows
    assert all(100_000 <= size <= 1_000_000 for size in sizes[:-1]), sizes


# --- access and masking ------------------------------------------------------------------


def test_masking_applies_the_creator_access_and_the_schedule(orders, outsider):
    grant(orders, outsider, row_filter=[{"column": "country", "op": "=", "value": "BE"}])
    schedule = _schedule(orders, outsider, format="parquet", masked_columns=["amount"])
    run = _run_now(schedule, outsider)
    assert run.status == ExportStatus.SUCCEEDED, run.error
    assert read_back(run) == {
        "order_id": [1, 3, 6],
        "country": ["BE", "BE", "BE"],
        "email": ["****", None, "****"],  # confidential, not named by the grant
        "amount": ["****", "****", "****"],  # masked by the schedule
    }
    assert run.detail["written"]["masked"] == ["amount", "email"]


def test_a_creator_who_lost_access_gets_a_failed_run_saying_why(orders, outsider):
    access = grant(orders, outsider)
    schedule = _schedule(orders, outsider)
    access.revoked_at = timezone.now()
    access.save()
    # A scheduled run (as beat fires it): the creator's access is decided afresh.
    run = export_run_for_slot(schedule=schedule, at=timezone.now())
    run = export_run_execute(run_id=run.pk)
    assert run.status == ExportStatus.FAILED
    assert "outsider" in run.error and "revoked" in run.error
    assert not run.file_name and files_of(schedule.pk) == []


# --- the quality gate --------------------------------------------------------------------


def test_the_quality_gate_holds_on_a_failing_error_check(orders, owner):
    port = orders.ports.get()
    check_create(port=port, by=owner, name="emails", kind=CheckKind.NOT_NULL, column="email")
    schedule = _schedule(orders, owner, quality_gate=True)
    run = _run_now(schedule, owner)
    assert run.status == ExportStatus.HELD
    assert "emails" in run.error and "1 null row of 6" in run.error
    assert run.detail["quality_gate"]["failing"][0]["check"] == "emails"
    assert CheckRun.objects.filter(pk=run.detail["quality_gate"]["check_run"]).exists()
    assert not run.file_name and files_of(schedule.pk) == []
    assert not AccessEvent.objects.filter(channel=Channel.EXPORT).exists()  # nothing read


def test_the_quality_gate_lets_warnings_through(orders, owner):
    port = orders.ports.get()
    check_create(
        port=port,
        by=owner,
        name="emails",
        kind=CheckKind.NOT_NULL,
        column="email",
        severity=Severity.WARN,
    )
    run = _run_now(_schedule(orders, owner, quality_gate=True), owner)
    assert run.status == ExportStatus.SUCCEEDED, run.error
    assert run.detail["quality_gate"]["checks"] == 1


# --- bad input at run time ---------------------------------------------------------------


@pytest.fixture
def too_many_rows_for_xlsx(domain, media_root):
    """One row more than an XLSX sheet holds (with its header)."""
    return parquet_product(
        media_root=media_root,
        domain=domain,
        rows={"n": pa.array(range(XLSX_MAX_ROWS + 1), pa.int32())},
        file_path="export-src/too-many.parquet",
        slug="too-many",
        sensitive=(),
    )


def test_xlsx_over_its_row_limit_fails_before_writing(too_many_rows_for_xlsx, owner):
    schedule = _schedule(too_many_rows_for_xlsx, owner, format="xlsx")
    run = _run_now(schedule, owner)
    assert run.status == ExportStatus.FAILED
    assert "1,048,576 rows" in run.error and "CSV, Parquet or JSON lines" in run.error
    assert not Path(default_storage.path(f"exports/{schedule.pk}")).exists()  # nothing written
    # The same rows fit in the other formats.
    export_schedule_update(schedule=schedule, by=owner, format="jsonl")
    assert _run_now(schedule, owner).rows == XLSX_MAX_ROWS + 1


@pytest.fixture
def tiny_disk(tmp_path):
    """A 4 MB tmpfs: writing more fails with ENOSPC, as on a full disk. Needs root (the
    CI and development machines run tests as root); skipped otherwise, and the file size
    limit test below still exercises the same path."""
    mount = tmp_path / "tiny-disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _big_product(domain, media_root: Path, slug: str):
    # A few kB of Parquet (dictionary-encoded) that become ~12 MB of CSV.
    count = 300_000
    return parquet_product(
        media_root=media_root,
        domain=domain,
        rows={
            "n": pa.array(range(count), pa.int64()),
            "label": pa.array([f"row {i % 100} of a table of many rows" for i in range(count)]),
        },
        file_path=f"export-src/{slug}.parquet",
        slug=slug,
        sensitive=(),
    )


def test_a_disk_that_fills_fails_the_run_and_leaves_no_file(tiny_disk, domain, owner, settings):
    settings.MEDIA_ROOT = tiny_disk  # the source and the exports share the 4 MB disk
    product = _big_product(domain, tiny_disk, "big")
    schedule = _schedule(product, owner)
    run = _run_now(schedule, owner)
    assert run.status == ExportStatus.FAILED
    assert run.error.startswith("The disk is full")
    assert not run.file_name and files_of(schedule.pk) == []  # no final, no temporary file
    assert os.statvfs(tiny_disk).f_bfree > 0  # the partial file's space was given back


def test_a_file_size_limit_fails_the_run_and_leaves_no_file(domain, media_root, owner):
    product = _big_product(domain, media_root, "big-fsize")
    schedule = _schedule(product, owner)
    run = export_run_request(schedule=schedule, by=owner)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # Writes past 1 MB fail with EFBIG (Python ignores SIGXFSZ), in this process only.
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        run = export_run_execute(run_id=run.pk)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert run.status == ExportStatus.FAILED
    assert "file size limit" in run.error
    assert files_of(schedule.pk) == []


# --- retention and the reaper ------------------------------------------------------------


def test_retention_keeps_the_last_runs_files(orders, owner):
    schedule = _schedule(orders, owner, retention_runs=2)
    runs = [_run_now(schedule, owner) for _ in range(3)]
    for run in runs:
        run.refresh_from_db()
    assert runs[0].pruned_at is not None and not default_storage.exists(runs[0].file_name)
    assert [run.pruned_at for run in runs[1:]] == [None, None]
    assert len(files_of(schedule.pk)) == 2
    export_schedule_update(schedule=schedule, by=owner, retention_runs=1)
    assert export_runs_prune() == 1
    assert [path.name for path in files_of(schedule.pk)] == [Path(runs[2].file_name).name]


def test_the_reaper_retries_dead_runs_then_fails_them(
    orders, owner, settings, django_capture_on_commit_callbacks
):
    settings.EXPORT_MAX_ATTEMPTS = 2
    schedule = _schedule(orders, owner)
    stale = timezone.now() - settings.EXPORT_HEARTBEAT_TIMEOUT - timedelta(seconds=5)
    dead = ExportRun.objects.create(
        schedule=schedule, status=ExportStatus.RUNNING, attempts=1, heartbeat_at=stale
    )
    alive = ExportRun.objects.create(
        schedule=schedule, status=ExportStatus.RUNNING, attempts=1, heartbeat_at=timezone.now()
    )
    folder = temp_folder(schedule.pk)
    folder.mkdir(parents=True, exist_ok=True)
    dead_temp = folder / temp_name(dead.pk, 1, "csv")
    alive_temp = folder / temp_name(alive.pk, 1, "csv")
    orphan = folder / temp_name(999_999, 3, "csv")  # a run long gone
    for path in (dead_temp, alive_temp, orphan):
        path.write_bytes(b"order_id\n1\n")
    old = stale.timestamp() - 60
    os.utime(orphan, (old, old))
    os.utime(alive_temp, (old, old))  # old, but its run is alive: kept

    with django_capture_on_commit_callbacks() as callbacks:
        result = export_runs_reap()
    assert (result.retried, result.failed, result.temp_files_removed) == (1, 0, 1)
    assert len(callbacks) == 1  # the retried run is sent to a worker again
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == ExportStatus.QUEUED and dead.detail["lost_attempts"][0]["attempt"] == 1
    assert alive.status == ExportStatus.RUNNING
    assert not dead_temp.exists() and not orphan.exists() and alive_temp.exists()

    # Queued again just now: not "unclaimed", however old the run; a run no worker took
    # for an hour is.
    hours_ago = timezone.now() - timedelta(hours=2)
    ExportRun.objects.filter(pk=dead.pk).update(created_at=hours_ago)
    forgotten = ExportRun.objects.create(schedule=schedule)
    ExportRun.objects.filter(pk=forgotten.pk).update(created_at=hours_ago)
    assert export_runs_reap().unclaimed == 1
    dead.refresh_from_db()
    forgotten.refresh_from_db()
    assert dead.status == ExportStatus.QUEUED
    assert forgotten.status == ExportStatus.FAILED and "No worker" in forgotten.error

    # The second attempt dies too: no third.
    ExportRun.objects.filter(pk=dead.pk).update(
        status=ExportStatus.RUNNING, attempts=2, heartbeat_at=stale
    )
    assert export_runs_reap().failed == 1
    dead.refresh_from_db()
    assert dead.status == ExportStatus.FAILED and "worker stopped" in dead.error
    alive_temp.unlink()


def test_a_run_is_claimed_once(orders, owner):
    schedule = _schedule(orders, owner)
    run = export_run_request(schedule=schedule, by=owner)
    assert export_run_request(schedule=schedule, by=owner) == run  # already queued
    assert export_run_execute(run_id=run.pk).status == ExportStatus.SUCCEEDED
    assert export_run_execute(run_id=run.pk) is None  # a second delivery: nothing
    assert export_run_execute(run_id=10**9) is None  # gone
    assert len(files_of(schedule.pk)) == 1
