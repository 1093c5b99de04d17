"""Scheduled exports: runs (one per cron slot, or "run now"), claimed once, executed with
the creator's access, written under a temporary name and renamed when complete; the
quality gate; retention; the reaper of runs whose worker died.

A run reads with the access of the schedule's creator, decided afresh at every run
(`read_plan(user=schedule.created_by, channel=Channel.EXPORT)`), plus the schedule's own
masking: one audit event per run (the read) and one per download. Nobody sees a partial
file: a run's file_name is recorded in the same transaction as the rename.

Schedules are in sharing.exports.services.schedules and files in
sharing.exports.services.files; this module re-exports their services, so that
`from sharing.exports.services.runs import ...` reaches all of them.
"""

from __future__ import annotations

import errno
import logging
import threading
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from portal.core.task_queue import enqueue_run_on_commit, redispatch_unclaimed
from products.catalog.selectors import port_for
from products.catalog.services.events import product_event_emit
from products.choices import CheckOutcome, CheckRunStatus, CheckTrigger, Severity
from products.connectors import ConnectorError
from products.models import CheckRun, OutputPort
from products.trust.services.checks import check_run_execute, cron_previous_fire
from products.trust.services.evidence import trust_after_check_run
from sharing.choices import (
    FINISHED_EXPORT_STATUSES,
    Channel,
    ExportStatus,
    ExportTrigger,
)
from sharing.exports.services.files import (
    EXPORT_FOLDER,
    PARTIAL_NAME,
    PARTIAL_SUFFIX,
    ExportFile,
    ExportFileRefused,
    export_file_decide,
    export_file_download,
    export_file_name,
    export_file_refusal,
    export_file_serve_audit,
    final_name_for,
    temp_folder,
    temp_name,
    temp_roots,
)
from sharing.exports.services.schedules import (
    cron_check,
    cron_preview,
    export_schedule_can_change,
    export_schedule_can_create,
    export_schedule_create,
    export_schedule_end,
    export_schedule_next_runs,
    export_schedule_update,
    export_schedules_see_all,
    periodic_task_name,
    timezone_check,
)
from sharing.models import ExportRun, ExportSchedule
from sharing.serving.reads import EXTENSIONS, ReadRefused, Served, read_plan, read_stream
from sharing.serving.source_errors import SOURCE_UNREADABLE, source_error_message

logger = logging.getLogger(__name__)

# Rows per export: no cap short of this (the reads of pages and the API stop at
# sharing.serving.reads.MAX_ROWS; larger reads are what scheduled exports are for).
EXPORT_MAX_ROWS = 10**12


# --- runs ------------------------------------------------------------------------------


def export_slot(*, schedule: ExportSchedule, at: datetime) -> str:
    """The cron slot `at` falls in: the schedule's latest fire time at or before it, in the
    schedule's time zone (ISO 8601 with its offset)."""
    zone = ZoneInfo(schedule.timezone)
    return cron_previous_fire(schedule.cron, at=at.astimezone(zone)).isoformat()


def export_run_for_slot(*, schedule: ExportSchedule, at: datetime) -> ExportRun | None:
    """The run of the slot `at` falls in, created once: a second delivery of the same
    slot (or a schedule paused or ended meanwhile) gets None."""
    if not schedule.enabled or schedule.ended_at is not None:
        return None
    try:
        slot = export_slot(schedule=schedule, at=at)
    except ValueError:
        return None
    try:
        with transaction.atomic():
            return ExportRun.objects.create(
                schedule=schedule, trigger=ExportTrigger.SCHEDULE, slot=slot
            )
    except IntegrityError:
        return None


def export_run_enqueue(run: ExportRun) -> None:
    """Send the run to a worker once the current transaction commits (the reaper sends
    it again when the broker was down)."""
    enqueue_run_on_commit("sharing.export_tasks.export_run", run.pk)


def export_run_request(*, schedule: ExportSchedule, by) -> ExportRun:
    """ "Run now": queue a run and return it to poll. A run already queued or running for
    the schedule is returned instead."""
    if not export_schedule_can_change(user=by, schedule=schedule):
        raise PermissionDenied(
            "Only the schedule's creator and the domain's owners and stewards run it."
        )
    with transaction.atomic():
        locked = ExportSchedule.objects.select_for_update().get(pk=schedule.pk)
        if locked.ended_at is not None:
            raise ValidationError({"schedule": "This schedule has ended: it cannot run again."})
        pending = ExportRun.objects.filter(
            schedule=schedule, status__in=(ExportStatus.QUEUED, ExportStatus.RUNNING)
        ).first()
        if pending is not None:
            return pending
        run = ExportRun.objects.create(
            schedule=schedule, trigger=ExportTrigger.MANUAL, requested_by=by
        )
        export_run_enqueue(run)
    return run


# --- executing a run -------------------------------------------------------------------


class _Heartbeat:
    """While a run is being written, a thread records every few seconds that its worker
    is alive, with the bytes and rows written so far (the page's progress). Blocking
    steps (the quality gate, a long first query) keep beating too."""

    def __init__(self, run_id: int, attempt: int, file: ExportFile, served: Served) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self.file = file
        self.served = served
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"export-{run_id}", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)

    def _beat(self) -> None:
        interval = settings.EXPORT_HEARTBEAT_SECONDS
        try:
            while not self.stopped.wait(interval):
                ExportRun.objects.filter(
                    pk=self.run_id, status=ExportStatus.RUNNING, attempts=self.attempt
                ).update(
                    heartbeat_at=timezone.now(),
                    bytes=self.file.bytes,
                    rows=self.served.rows or None,
                )
        except Exception:  # a missed beat must not break the export
            logger.exception("export run %s: heartbeat failed", self.run_id)
        finally:
            connection.close()  # this thread's own connection


class _Stop(Exception):
    """The run ends without a file: held by the quality gate, or failed with a reason.
    `public`: the reason as its event says it, when `error` (written for the schedule's
    creator) may hold a source's technical detail."""

    def __init__(
        self, status: str, error: str, detail: dict | None = None, *, public: str | None = None
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail or {}
        self.public = error if public is None else public


def _finish(
    run: ExportRun, attempt: int, *, public_error: str | None = None, **values: Any
) -> bool:
    """Record the end of this attempt and write its event, unless another attempt took
    the run over. `public_error`: the event's error when the run's own may hold a
    source's technical detail."""
    values.setdefault("finished_at", timezone.now())
    with transaction.atomic():
        ended = ExportRun.objects.filter(
            pk=run.pk, status=ExportStatus.RUNNING, attempts=attempt
        ).update(**values)
        if ended:
            error = values.get("error", "") if public_error is None else public_error
            _export_run_finished_emit(run, values=values, error=error)
    return bool(ended)


def _export_run_data(run: ExportRun) -> dict[str, Any]:
    schedule = run.schedule
    return {
        "run_id": run.pk,
        "export_id": schedule.pk,
        "export": schedule.name,
        "format": schedule.format,
        "trigger": run.trigger,
        "attempt": run.attempts,
    }


def _export_run_started_emit(run: ExportRun) -> None:
    schedule = run.schedule
    product_event_emit(
        "portal.export_run.started",
        product=schedule.product,
        people=[schedule.created_by_id],
        data={**_export_run_data(run), "started_at": run.started_at.isoformat()},
    )


def _export_run_finished_emit(run: ExportRun, *, values: dict[str, Any], error: str) -> None:
    """The finished event of `run` from the values its end wrote: "succeeded", or "failed"
    (failed or held by the quality gate: `status` tells which) with the reason."""
    schedule = run.schedule
    status = values["status"]
    succeeded = status == ExportStatus.SUCCEEDED
    product_event_emit(
        "portal.export_run.finished",
        product=schedule.product,
        people=[schedule.created_by_id],
        data={
            **_export_run_data(run),
            "outcome": "succeeded" if succeeded else "failed",
            "status": status,
            "rows": values.get("rows") if succeeded else None,
            "bytes": values.get("bytes") if succeeded else None,
            "error": "" if succeeded else error,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": values["finished_at"].isoformat(),
        },
    )


def _quality_gate(run: ExportRun, port: OutputPort) -> dict:
    """Run the port's enabled checks now, in this worker (a real check run, with its
    incidents and trust score). Raises _Stop(HELD) listing the error-severity checks that
    failed or could not run."""

    if not port.checks.filter(enabled=True).exists():
        return {"checks": 0, "note": "The port has no enabled checks: nothing to gate on."}
    check_run = CheckRun.objects.create(
        port=port, trigger=CheckTrigger.MANUAL, requested_by=run.schedule.created_by
    )
    executed = check_run_execute(run_id=check_run.pk)
    if executed is None:  # cannot happen: the run was created here, unclaimed
        raise _Stop(ExportStatus.FAILED, "The quality gate's check run was taken elsewhere.")
    trust_after_check_run(run=executed)
    gate = {"check_run": executed.pk}
    if executed.status == CheckRunStatus.ERROR:
        raise _Stop(
            ExportStatus.HELD,
            f"Held by the quality gate: the checks could not run ({executed.error}).",
            {"quality_gate": gate},
            public="Held by the quality gate: the checks could not run.",
        )
    failing = [
        result
        for result in executed.results.select_related("quality_check").order_by("pk")
        if result.severity == Severity.ERROR
        and result.outcome in (CheckOutcome.FAIL, CheckOutcome.ERROR)
    ]
    gate["checks"] = executed.results.count()
    if failing:
        gate["failing"] = [
            {"check": r.quality_check.name, "outcome": r.outcome, "message": r.message}
            for r in failing
        ]
        listed = "; ".join(
            f"{r.quality_check.name} "
            f"({'failed' if r.outcome == CheckOutcome.FAIL else 'could not run'}: {r.message})"
            for r in failing
        )
        raise _Stop(
            ExportStatus.HELD,
            f"Held by the quality gate: {len(failing)} error-severity check"
            f"{'s' if len(failing) != 1 else ''} failed: {listed}",
            {"quality_gate": gate},
        )
    return gate


def _disk_error(exc: OSError) -> str | None:
    if exc.errno == errno.ENOSPC:
        return "The disk is full: the export could not be written. Free space, then run it again."
    if exc.errno == errno.EFBIG:
        return (
            "The file grew beyond the size this worker may write (file size limit): the "
            "export could not be written."
        )
    if exc.errno == errno.EDQUOT:
        return "The disk quota is exhausted: the export could not be written."
    return None


def export_run_execute(*, run_id: int) -> ExportRun | None:
    """Claim a queued run and execute it: the quality gate (when asked), the read with the
    creator's access, the file under a temporary name, then its final name. Returns None
    when the run is gone or already claimed (a second delivery of its task)."""
    now = timezone.now()
    with transaction.atomic():
        claimed = ExportRun.objects.filter(pk=run_id, status=ExportStatus.QUEUED).update(
            status=ExportStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            finished_at=None,
            attempts=F("attempts") + 1,
            rows=None,
            bytes=None,
            error="",
        )
        if not claimed:
            return None
        run = ExportRun.objects.select_related(
            "schedule__product__domain", "schedule__port", "schedule__created_by"
        ).get(pk=run_id)
        _export_run_started_emit(run)
    attempt = run.attempts
    schedule = run.schedule
    fmt = schedule.format
    file = ExportFile(schedule_id=schedule.pk, run_id=run.pk, attempt=attempt, fmt=fmt)
    served = Served()
    try:
        with _Heartbeat(run.pk, attempt, file, served):
            values = _export(run, attempt, file, served)
    except _Stop as stop:
        file.discard()
        _finish(
            run,
            attempt,
            status=stop.status,
            error=stop.error[:4000],
            detail={**run.detail, **stop.detail},
            public_error=stop.public[:4000],
        )
    except SoftTimeLimitExceeded:
        file.discard()
        _finish(
            run,
            attempt,
            status=ExportStatus.FAILED,
            error="The export took longer than its time limit "
            f"({settings.EXPORT_TIME_LIMIT_SECONDS:,} s): narrow it, or raise "
            "EXPORT_TIME_LIMIT_SECONDS.",
        )
    except Exception as exc:
        file.discard()
        reason = public = _disk_error(exc) if isinstance(exc, OSError) else None
        if reason is None:
            logger.exception("export run %s failed", run_id)
            reason = f"Unexpected error: {exc.__class__.__name__}: {exc}"
            public = f"Unexpected error: {exc.__class__.__name__}"
        _finish(run, attempt, status=ExportStatus.FAILED, error=reason[:4000], public_error=public)
        if not isinstance(exc, OSError):
            raise
    else:
        if values is not None:
            export_runs_prune(schedule=schedule)
    finally:
        file.discard()  # never leave a temporary file behind (no-op once renamed)
    run.refresh_from_db()
    return run


def _export(run: ExportRun, attempt: int, file: ExportFile, served: Served) -> dict | None:
    schedule = run.schedule
    product = schedule.product
    if schedule.ended_at is not None:
        raise _Stop(ExportStatus.FAILED, "The schedule ended before this run started.")
    port = schedule.port or port_for(product=product)
    if port is None:
        raise _Stop(ExportStatus.FAILED, "The product has no output port to export.")
    detail: dict[str, Any] = dict(run.detail)
    if schedule.quality_gate:
        detail["quality_gate"] = _quality_gate(run, port)
    creator = schedule.created_by
    try:
        plan = read_plan(
            user=creator,
            product=product,
            channel=Channel.EXPORT,
            port_slug=port.slug,
            columns=schedule.columns or None,
            filter=schedule.row_filter or None,
            max_rows=EXPORT_MAX_ROWS,
        )
    except ReadRefused as exc:
        raise _Stop(
            ExportStatus.FAILED,
            f"The schedule reads with the access of {creator.username}, who cannot read "
            f"this export now: {exc.message}",
            detail,
        ) from exc
    plan.masked = plan.masked | {name for name in schedule.masked_columns if name in plan.columns}
    plan.neutralise_formulas = schedule.neutralise_formulas
    fmt = schedule.format
    written = {
        "format": fmt,
        "port": port.slug,
        "columns": plan.columns,
        "masked": sorted(plan.masked),
        "row_filter": [clause.as_dict() for clause in plan.clauses],
        "basis": plan.decision.basis,
        "attempt": attempt,
        "neutralise_formulas": plan.neutralise_formulas,
    }
    stream = read_stream(
        plan,
        fmt=fmt,
        served=served,
        audit_detail={"export_run": run.pk, "export_schedule": schedule.pk},
    )
    try:
        with closing(stream):
            for chunk in stream:
                file.write(chunk)
    except ReadRefused as exc:  # XLSX beyond its row limit: refused before writing
        raise _Stop(ExportStatus.FAILED, exc.message, detail) from exc
    except ConnectorError as exc:
        # The run's creator reads the error: a driver's message only for members/admins.
        message = source_error_message(user=schedule.created_by, product=schedule.product, exc=exc)
        raise _Stop(ExportStatus.FAILED, message, detail, public=SOURCE_UNREADABLE) from exc
    file.finish()
    final_name = final_name_for(run, fmt)
    values = {
        "status": ExportStatus.SUCCEEDED,
        "file_name": final_name,
        "rows": served.rows,
        "bytes": file.bytes,
        "sha256": file.sha256,
        "error": "",
        "detail": {**detail, "written": written},
    }
    with transaction.atomic():
        if not _finish(run, attempt, **values):
            return None  # a later attempt took the run over (this worker was presumed dead)
        stored = file.commit(final_name)
        if stored != final_name:
            ExportRun.objects.filter(pk=run.pk).update(file_name=stored)
    return values


# --- retention and the reaper ----------------------------------------------------------


def export_runs_prune(*, schedule: ExportSchedule | None = None, now=None) -> int:
    """Remove the files of succeeded runs beyond each schedule's retention (the last
    `retention_runs` files are kept); the runs stay in the history, marked pruned.
    Returns how many files were removed."""
    now = now or timezone.now()
    schedules = (
        [schedule]
        if schedule is not None
        else ExportSchedule.objects.filter(
            runs__status=ExportStatus.SUCCEEDED, runs__pruned_at__isnull=True
        ).distinct()
    )
    removed = 0
    for item in schedules:
        kept = ExportRun.objects.filter(
            schedule=item, status=ExportStatus.SUCCEEDED, pruned_at__isnull=True
        ).order_by("-finished_at", "-pk")
        for run in list(kept[item.retention_runs :]):
            try:
                default_storage.delete(run.file_name)
            except OSError:
                logger.exception("could not remove export file %s", run.file_name)
                continue
            ExportRun.objects.filter(pk=run.pk).update(pruned_at=now)
            removed += 1
    return removed


@dataclass
class ReapResult:
    retried: int = 0
    failed: int = 0
    unclaimed: int = 0
    temp_files_removed: int = 0


def export_runs_reap(*, now: datetime | None = None) -> ReapResult:
    """Runs whose worker died (no heartbeat for EXPORT_HEARTBEAT_TIMEOUT) are queued
    again, up to EXPORT_MAX_ATTEMPTS attempts, then failed; their temporary files are
    removed, and so is any orphaned temporary file older than the timeout. Runs no worker
    picked up within EXPORT_QUEUED_TIMEOUT fail."""
    now = now or timezone.now()
    timeout: timedelta = settings.EXPORT_HEARTBEAT_TIMEOUT
    result = ReapResult()
    stale = ExportRun.objects.filter(status=ExportStatus.RUNNING).filter(
        Q(heartbeat_at__lt=now - timeout)
        | Q(heartbeat_at__isnull=True, started_at__lt=now - timeout)
    )
    for run in stale.select_related("schedule__product__domain"):
        _remove_temp(run.schedule_id, run.pk, run.attempts, run.schedule.format)
        lost = [
            *run.detail.get("lost_attempts", []),
            {"attempt": run.attempts, "at": now.isoformat()},
        ]
        with transaction.atomic():
            if run.attempts < settings.EXPORT_MAX_ATTEMPTS and run.schedule.ended_at is None:
                retried = ExportRun.objects.filter(
                    pk=run.pk, status=ExportStatus.RUNNING, attempts=run.attempts
                ).update(
                    status=ExportStatus.QUEUED,
                    heartbeat_at=now,  # queued again at: the unclaimed timeout counts from it
                    detail={**run.detail, "lost_attempts": lost},
                )
                if retried:
                    export_run_enqueue(run)
                    result.retried += 1
            else:
                failed = _finish(
                    run,
                    run.attempts,
                    status=ExportStatus.FAILED,
                    finished_at=now,
                    detail={**run.detail, "lost_attempts": lost},
                    error=f"The worker stopped during the export ({run.attempts} attempt"
                    f"{'s' if run.attempts != 1 else ''}, no sign of life for {timeout}).",
                )
                result.failed += failed
    queued_before = now - settings.EXPORT_QUEUED_TIMEOUT
    # Queued long enough to have started, not yet given up: the message was lost (the
    # broker was down when the run was queued), so it is sent again.
    lost_after = now - settings.TASK_REDISPATCH_AFTER
    redispatch_unclaimed(
        ExportRun.objects.filter(status=ExportStatus.QUEUED).filter(
            Q(heartbeat_at__lt=lost_after, heartbeat_at__gte=queued_before)
            | Q(
                heartbeat_at__isnull=True,
                created_at__lt=lost_after,
                created_at__gte=queued_before,
            )
        ),
        "sharing.export_tasks.export_run",
    )
    unclaimed = ExportRun.objects.filter(status=ExportStatus.QUEUED).filter(
        Q(heartbeat_at__lt=queued_before)
        | Q(heartbeat_at__isnull=True, created_at__lt=queued_before)
    )
    for run in unclaimed.select_related("schedule__product__domain").order_by("pk"):
        values = {
            "status": ExportStatus.FAILED,
            "finished_at": now,
            "error": "No worker picked this run up. Is a Celery worker running?",
        }
        with transaction.atomic():
            # Each with its event; a run a worker claimed meanwhile is left to it.
            if ExportRun.objects.filter(pk=run.pk, status=ExportStatus.QUEUED).update(**values):
                _export_run_finished_emit(run, values=values, error=values["error"])
                result.unclaimed += 1
    result.temp_files_removed = _remove_orphaned_temp_files(now=now, older_than=timeout)
    return result


def _remove_temp(schedule_id: int, run_id: int, attempt: int, fmt: str) -> None:
    if fmt in EXTENSIONS:
        (temp_folder(schedule_id) / temp_name(run_id, attempt, fmt)).unlink(missing_ok=True)


def _remove_orphaned_temp_files(*, now: datetime, older_than: timedelta) -> int:
    """Temporary files no live attempt is writing, last written before the timeout."""
    removed = 0
    cutoff = (now - older_than).timestamp()
    for root in temp_roots():
        if not root.is_dir():
            continue
        for path in root.glob(f"*/.*{PARTIAL_SUFFIX}"):
            match = PARTIAL_NAME.match(path.name)
            if match:
                run_id, attempt = int(match.group(1)), int(match.group(2))
                if ExportRun.objects.filter(
                    pk=run_id, status=ExportStatus.RUNNING, attempts=attempt
                ).exists():
                    continue  # its writer is alive (or will be reaped first)
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
            except FileNotFoundError:
                continue
    return removed


def export_run_is_finished(run: ExportRun) -> bool:
    return run.status in FINISHED_EXPORT_STATUSES


def export_run_duration(run: ExportRun) -> float | None:
    if run.started_at and run.finished_at:
        return (run.finished_at - run.started_at).total_seconds()
    return None


__all__ = [
    "EXPORT_FOLDER",
    "EXPORT_MAX_ROWS",
    "PARTIAL_SUFFIX",
    "ExportFile",
    "ExportFileRefused",
    "ReapResult",
    "cron_check",
    "cron_preview",
    "export_file_decide",
    "export_file_download",
    "export_file_name",
    "export_file_refusal",
    "export_file_serve_audit",
    "export_run_duration",
    "export_run_enqueue",
    "export_run_execute",
    "export_run_for_slot",
    "export_run_is_finished",
    "export_run_request",
    "export_runs_prune",
    "export_runs_reap",
    "export_schedule_can_change",
    "export_schedule_can_create",
    "export_schedule_create",
    "export_schedule_end",
    "export_schedule_next_runs",
    "export_schedule_update",
    "export_schedules_see_all",
    "export_slot",
    "periodic_task_name",
    "temp_folder",
    "temp_name",
    "temp_roots",
    "timezone_check",
]
