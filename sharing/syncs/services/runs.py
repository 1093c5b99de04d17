"""Sync runs: requested (by hand, a schedule, a passing check run, an approval), claimed
once by a worker, planned (sharing.syncs.planning), checked by the guardrails
(sharing.syncs.guardrails), then sent in batches to the destination's writer
(sharing.syncs.services.sending). After each batch, in one portal transaction, the
state advances for the records the destination acknowledged, rejected records are kept
(the dead-letter list), and the run's counts move on. A run a dead worker left running
is queued again by the reaper and resumes with the same run id (so the same idempotency
keys): what was acknowledged is in the state already, and the re-plan sends the rest.

A run reads with its creator's access, decided again at every run (read_plan with the
sync channel): losing it fails the run and pauses the sync. A held run's plan is stored
record by record (SyncPlannedChange), and approving it sends exactly that plan."""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from portal.core.notifications import notification_create
from portal.core.task_queue import enqueue_run_on_commit, redispatch_unclaimed
from products.catalog.services.events import product_event_emit
from products.choices import IncidentCause
from products.connectors import ConnectorError, connector_for_port
from products.definitions.services.metrics import MetricRefused
from products.trust.services.incidents import incident_open, incident_recover
from sharing.choices import Channel
from sharing.models import Sync, SyncPlannedChange, SyncRecordState, SyncRejectedRecord, SyncRun
from sharing.models.syncs import ChangeKind, SyncMode, SyncRunStatus, SyncRunTrigger, SyncStatus
from sharing.serving.reads import ReadPlan, ReadRefused, audit_read, read_plan
from sharing.syncs.destinations import destination_writer
from sharing.syncs.destinations.base import DestinationError
from sharing.syncs.guardrails import ColumnLimitCheck, count_guardrails
from sharing.syncs.metric_source import batch_key_counts, metric_source_batch
from sharing.syncs.planning import SyncDiff, diff_plan, first_run_diff, key_counts, scan_batches
from sharing.syncs.services.sending import (
    ChangeItem,
    RunContext,
    RunLost,
    RunStop,
    batch_size_of,
    batches_of,
    change_items,
    recording,
    removal_record,
    send_changes,
    send_items,
    source_rows,
    source_stop,
)
from sharing.syncs.services.syncs import (
    LOOP_LIMITS_NEEDED,
    destination_field,
    sync_can_change,
    sync_paused,
)

logger = logging.getLogger(__name__)

SYNC_RUN_TASK = "sharing.syncs.tasks.sync_run"
SAMPLE_PER_KIND = 10
PLANNED_CHUNK = 2_000
FINISHED = (SyncRunStatus.SUCCEEDED, SyncRunStatus.FAILED, SyncRunStatus.CANCELLED)


# What every reader of the product's incidents learns of a consumer's sync that failed or
# was held; the why is on the sync's page and in the incident's detail.
SYNC_INCIDENT_BODY = (
    "A sync of this product into another system failed or is held for approval. Its "
    "page says why (its creator, the destination domain's owners and admins see it)."
)


def sync_cause_key(sync_id: int) -> str:
    return f"sync:{sync_id}"


# --- requests, approvals -----------------------------------------------------------------


def sync_run_enqueue(run: SyncRun) -> None:
    enqueue_run_on_commit(SYNC_RUN_TASK, run.pk)


def sync_run_request(
    *, sync: Sync, by, dry_run: bool = False, trigger: str = SyncRunTrigger.MANUAL
) -> SyncRun:
    """Queue a run (sent to a worker after commit) and return it. `by` None: a schedule
    or a check run asks. A run already queued or running of the same kind is returned."""
    if by is not None and not sync_can_change(user=by, sync=sync):
        raise PermissionDenied(
            "Only the sync's creator, its destination domain's owners and admins run it."
        )
    if trigger not in SyncRunTrigger.values or trigger == SyncRunTrigger.APPROVAL:
        raise ValidationError({"trigger": "manual, schedule or after_checks."})
    with transaction.atomic():
        locked = Sync.objects.select_for_update().get(pk=sync.pk)
        if locked.status == SyncStatus.PAUSED and not dry_run:
            raise ValidationError(
                {"sync": f"This sync is paused ({locked.paused_reason}): resume it first."}
            )
        pending = SyncRun.objects.filter(
            sync=locked,
            dry_run=dry_run,
            status__in=(SyncRunStatus.QUEUED, SyncRunStatus.RUNNING),
        ).first()
        if pending is not None:
            return pending
        run = SyncRun.objects.create(sync=locked, trigger=trigger, dry_run=dry_run, requested_by=by)
        sync_run_enqueue(run)
    return run


def sync_run_approve(*, run: SyncRun, by) -> SyncRun:
    """Send a held run's exact plan: a new run (trigger approval) that sends the planned
    changes stored with the held one, without planning again."""
    if not sync_can_change(user=by, sync=run.sync):
        raise PermissionDenied(
            "Only the sync's creator, its destination domain's owners and admins approve "
            "its held runs."
        )
    with transaction.atomic():
        held = SyncRun.objects.select_for_update().get(pk=run.pk)
        if held.status != SyncRunStatus.HELD:
            raise ValidationError(
                {
                    "run": f"This run is {held.get_status_display().lower()}, "
                    "not held: there is nothing to approve."
                }
            )
        if SyncRun.objects.filter(approves=held).exists():
            raise ValidationError({"run": "This held run was approved already."})
        now = timezone.now()
        approval = SyncRun.objects.create(
            sync=held.sync,
            trigger=SyncRunTrigger.APPROVAL,
            approves=held,
            requested_by=by,
            approved_by=by,
            approved_at=now,
            planned=held.planned,
            source_rows=held.source_rows,
        )
        sync_run_enqueue(approval)
    return approval


def sync_run_decline(*, run: SyncRun, by, reason: str = "") -> SyncRun:
    if not sync_can_change(user=by, sync=run.sync):
        raise PermissionDenied(
            "Only the sync's creator, its destination domain's owners and admins decline "
            "its held runs."
        )
    with transaction.atomic():
        declined = SyncRun.objects.filter(pk=run.pk, status=SyncRunStatus.HELD).update(
            status=SyncRunStatus.CANCELLED,
            finished_at=timezone.now(),
            error=(f"Declined by {by.get_username()}" + (f": {reason}" if reason else "."))[:4000],
        )
        if not declined:
            raise ValidationError({"run": "Only a held run can be declined."})
        SyncPlannedChange.objects.filter(run_id=run.pk).delete()
    run.refresh_from_db()
    return run


# --- executing a run ---------------------------------------------------------------------


class _Heartbeat:
    def __init__(self, run_id: int, attempt: int) -> None:
        self.run_id, self.attempt = run_id, attempt
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"sync-{run_id}", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)

    def _beat(self) -> None:
        try:
            while not self.stopped.wait(settings.SYNC_HEARTBEAT_SECONDS):
                SyncRun.objects.filter(
                    pk=self.run_id, status=SyncRunStatus.RUNNING, attempts=self.attempt
                ).update(heartbeat_at=timezone.now())
        except Exception:  # a missed beat must not break the run
            logger.exception("sync run %s: heartbeat failed", self.run_id)
        finally:
            connection.close()  # this thread's own connection


def _claim(run_id: int) -> SyncRun | None:
    now = timezone.now()
    with transaction.atomic():
        claimed = SyncRun.objects.filter(pk=run_id, status=SyncRunStatus.QUEUED).update(
            status=SyncRunStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            finished_at=None,
            attempts=F("attempts") + 1,
        )
        if not claimed:
            return None
    return SyncRun.objects.select_related(
        "sync__product__domain",
        "sync__destination__domain",
        "sync__port__source",
        "sync__metric__port__product__domain",
        "sync__created_by",
        "approves",
    ).get(pk=run_id)


def sync_run_execute(*, run_id: int) -> SyncRun | None:
    """Claim a queued run and execute it. None when the run is gone or claimed already."""
    run = _claim(run_id)
    if run is None:
        return None
    ctx = RunContext(run=run, sync=run.sync, attempt=run.attempts)
    try:
        with _Heartbeat(run.pk, ctx.attempt):
            _execute(ctx)
    except RunLost:
        logger.warning("sync run %s: taken over by a later attempt", run_id)
    except RunStop as stop:
        _fail(ctx, stop.error, pause=stop.pause, technical=stop.technical)
    except Exception as exc:
        logger.exception("sync run %s failed", run_id)
        _fail(ctx, f"Unexpected error: {exc.__class__.__name__}: {exc}")
        raise
    finally:
        if ctx.diff is not None:
            ctx.diff.drop()
    run.refresh_from_db()
    return run


def _execute(ctx: RunContext) -> None:
    run, sync = ctx.run, ctx.sync
    if sync.status == SyncStatus.PAUSED and not run.dry_run:
        raise RunStop(f"The sync was paused ({sync.paused_reason}) before this run started.")
    if sync.loop_warning and not sync.column_limits:
        raise RunStop(f"{sync.loop_warning} {LOOP_LIMITS_NEEDED}")
    if sync.metric_id is None:  # a metric's evaluation decides access for itself
        ctx.plan = _plan_read(ctx)
    key_fields = [destination_field(sync, c) for c in sync.key_columns]
    with destination_writer(sync.destination, key_fields=key_fields, run_id=run.pk) as writer:
        started = time.monotonic()
        try:
            writer.check()
        except DestinationError as exc:
            raise RunStop(
                f"The destination {sync.destination.name!r} cannot be used: {exc.message}",
                technical=exc.technical,
            ) from exc
        ctx.timings["check_s"] = round(time.monotonic() - started, 3)
        if run.approves_id is not None:
            with recording(ctx):
                _send_approved(ctx, writer)
            _succeed(ctx)
            return
        diff = ctx.diff = _diff(ctx)
        counts = diff.counts
        planned = _planned_count(sync, counts)
        SyncRun.objects.filter(pk=run.pk).update(
            source_rows=counts.source_rows, planned=planned, skipped=_skipped(sync, counts)
        )
        run.source_rows, run.planned = counts.source_rows, planned
        # A dry run tells what would hold the real one; a resumed run passed them already.
        if run.dry_run or not run.detail.get("guardrails_passed"):
            reasons = _guardrail_reasons(ctx, diff)
            if run.dry_run:
                _dry_run(ctx, diff, would_hold=reasons)
                return
            if reasons:
                _hold(ctx, diff, reasons)
                return
            run.detail = {**run.detail, "guardrails_passed": True}
            SyncRun.objects.filter(pk=run.pk).update(detail=run.detail)
        started = time.monotonic()
        ctx.fresh_state = diff.all_added
        with recording(ctx):
            send_changes(ctx, writer, diff)
        ctx.timings["send_s"] = round(time.monotonic() - started, 3)
        _succeed(ctx)


def _guardrail_reasons(ctx: RunContext, diff: SyncDiff) -> list[dict]:
    """What in this plan trips the sync's guardrails (empty: nothing)."""
    sync, run, counts = ctx.sync, ctx.run, diff.counts
    reasons = count_guardrails(
        sync=sync,
        run=run,
        source_rows=counts.source_rows,
        state_rows=counts.state_rows,
        added=counts.added,
        changed=counts.changed,
        removed=counts.removed if sync.mode == SyncMode.MIRROR else 0,
        retried=SyncRejectedRecord.objects.filter(sync=sync, resolved_at__isnull=True).count(),
    )
    if sync.column_limits:
        reasons += _column_limit_reasons(ctx, diff)
    return reasons


def _plan_read(ctx: RunContext) -> ReadPlan:
    sync = ctx.sync
    creator = sync.created_by
    try:
        plan = read_plan(
            user=creator,
            product=sync.product,
            channel=Channel.SYNC,
            port_slug=sync.port.slug if sync.port_id else None,
            columns=sync.columns,
            max_rows=10**12,
        )
    except ReadRefused as exc:
        message = (
            f"The sync reads with the access of {creator.username}, who cannot read it now: "
            f"{exc.message}"
        )
        raise RunStop(message, pause=f"Access lost: {exc.message}") from exc
    masked = [c for c in sync.key_columns if c in plan.masked]
    if masked:
        message = (
            f"Key column(s) {', '.join(masked)} are masked in {creator.username}'s access now: "
            "the sync cannot identify records."
        )
        raise RunStop(message, pause=message)
    plan.detail = {"sync": sync.pk, "sync_run": ctx.run.pk}
    return plan


def _diff(ctx: RunContext) -> SyncDiff:
    """The plan: the added, changed and removed keys of this run, refused when a key the
    run would send repeats in the source."""
    sync = ctx.sync
    started = time.monotonic()
    first = not SyncRecordState.objects.filter(sync=sync).exists()
    diff = _metric_diff(ctx, first) if sync.metric_id is not None else _port_diff(ctx, first)
    ctx.timings["plan_s"] = round(time.monotonic() - started, 3)
    ctx.timings.update({f"plan_{name}": seconds for name, seconds in diff.timings.items()})
    if diff.counts.duplicate is not None:
        diff.drop()
        raise RunStop(
            f"The key ({', '.join(sync.key_columns)}) is not unique in the source: "
            f"{diff.counts.duplicate} appears more than once. Choose key columns that "
            "identify one row each; nothing was sent."
        )
    return diff


def _port_diff(ctx: RunContext, first: bool) -> SyncDiff:
    """One governed (key, hash) read of the port, audited once per run."""
    plan, sync, run = ctx.plan, ctx.sync, ctx.run
    error = ""
    diff = None
    try:
        with connector_for_port(plan.port) as connector:
            # A key the source guarantees unique is not counted again (docs/syncs.md).
            key_unique = connector.key_is_unique(sync.key_columns)
            if first:  # every key is added: counted on the source, no keys copied
                counts = key_counts(plan, connector, sync.key_columns, key_unique=key_unique)
                diff = first_run_diff(sync_id=sync.pk, run_id=run.pk, counts=counts)
            else:
                diff = diff_plan(
                    sync_id=sync.pk,
                    run_id=run.pk,
                    batches=scan_batches(plan, connector, sync.key_columns),
                    key_unique=key_unique,
                )
    except ConnectorError as exc:
        error = exc.technical
        raise source_stop(ctx, exc) from exc
    finally:
        audit_read(
            plan,
            rows=diff.counts.source_rows if diff else 0,
            nbytes=None,
            client_address=None,
            fmt="sync",
            error=error,
        )
    return diff


def _metric_diff(ctx: RunContext, first: bool) -> SyncDiff:
    """The metric evaluated with the creator's access (audited by the evaluation), its
    values kept for the run to send, their (key, hash) pairs diffed."""
    sync, run = ctx.sync, ctx.run
    try:
        batch = ctx.metric_batch = metric_source_batch(sync, run_id=run.pk)
    except MetricRefused as exc:
        message = (
            f"The metric {sync.metric.key} cannot be evaluated with the access of "
            f"{sync.created_by.username}: {exc.message}"
        )
        pause = f"Access lost: {exc.message}" if exc.status == 403 else ""
        raise RunStop(message, pause=pause) from exc
    if first:
        return first_run_diff(sync_id=sync.pk, run_id=run.pk, counts=batch_key_counts(batch))
    return diff_plan(sync_id=sync.pk, run_id=run.pk, batches=iter([batch]))


def _planned_count(sync: Sync, counts) -> int:
    if sync.mode == SyncMode.INSERT:
        return counts.added
    removed = counts.removed if sync.mode == SyncMode.MIRROR else 0
    return counts.added + counts.changed + removed


def _skipped(sync: Sync, counts) -> int:
    """Changes this mode does not send: removals outside mirror, changes in insert mode."""
    skipped = 0 if sync.mode == SyncMode.MIRROR else counts.removed
    if sync.mode == SyncMode.INSERT:
        skipped += counts.changed
    return skipped


# --- dry runs, guardrails, holds, approvals ----------------------------------------------


def _before(sync: Sync, keys: list[str]) -> dict[str, SyncRecordState]:
    return {
        state.key: state
        for state in SyncRecordState.objects.filter(sync=sync, key__in=keys).only(
            "key", "limited_values", "row_hash"
        )
    }


def _dry_run(ctx: RunContext, diff: SyncDiff, *, would_hold: list[dict]) -> None:
    """The plan and a sample of each kind of change, as destination records, and what
    would hold a real run now (`held_reasons` of a planned run); nothing sent, no state
    changed."""
    sync = ctx.sync
    sample: dict[str, list] = {"added": [], "changed": [], "removed": []}
    for item in change_items(ctx, diff):
        listed = sample[item.kind]
        if len(listed) >= SAMPLE_PER_KIND:
            if all(len(v) >= SAMPLE_PER_KIND for v in sample.values()):
                break
            continue
        if item.kind == ChangeKind.CHANGED:
            state = _before(sync, [item.key]).get(item.key)
            listed.append(
                {
                    "key": item.key,
                    "before": (state.limited_values or None) if state else None,
                    "after": item.record,
                }
            )
        else:
            listed.append(item.record)
    if sync.mode != SyncMode.MIRROR:
        for chunk in diff.keys(ChangeKind.REMOVED):
            sample["removed"] = [removal_record(sync, key) for key, _ in chunk[:SAMPLE_PER_KIND]]
            break
    counts = diff.counts
    values = {
        "status": SyncRunStatus.PLANNED,
        "plan_sample": sample,
        "held_reasons": would_hold,
        "added": counts.added,
        "changed": counts.changed,
        "removed": counts.removed,
    }
    _end(ctx, values)


def _column_limit_reasons(ctx: RunContext, diff: SyncDiff) -> list[dict]:
    sync = ctx.sync
    check = ColumnLimitCheck(limits=sync.column_limits)
    pending: list[tuple[str, dict]] = []

    def flush() -> None:
        before = _before(sync, [key for key, _ in pending])
        for key, values in pending:
            state = before.get(key)
            check.add(key=key, values=values, before=state.limited_values if state else None)
        pending.clear()

    for kind, key, _hash, values in source_rows(ctx, diff):
        if kind == ChangeKind.ADDED:
            check.add(key=key, values=values, before=None)
            continue
        pending.append((key, values))
        if len(pending) >= PLANNED_CHUNK:
            flush()
    flush()
    return check.reasons()


def _hold(ctx: RunContext, diff: SyncDiff, reasons: list[dict]) -> None:
    """Store the exact plan, record by record, and hold the run for approval."""
    run = ctx.run
    chunk: list[SyncPlannedChange] = []
    for item in change_items(ctx, diff):
        chunk.append(
            SyncPlannedChange(
                run=run,
                kind=item.kind,
                key=item.key,
                row_hash=item.row_hash,
                record={"record": item.record, "limited": item.limited},
            )
        )
        if len(chunk) >= PLANNED_CHUNK:
            SyncPlannedChange.objects.bulk_create(chunk)
            chunk = []
    SyncPlannedChange.objects.bulk_create(chunk)
    counts = diff.counts
    values = {
        "status": SyncRunStatus.HELD,
        "held_reasons": reasons,
        "added": 0,
        "changed": 0,
        "removed": 0,
        "plan_sample": {
            "counts": {"added": counts.added, "changed": counts.changed, "removed": counts.removed}
        },
    }
    _end(ctx, values, held=True)


def _send_approved(ctx: RunContext, writer) -> None:
    """Send the held run's planned changes exactly, skipping those a previous attempt of
    this run got acknowledged (the state holds them already)."""
    sync = ctx.sync
    held_id = ctx.run.approves_id
    last = 0
    size = batch_size_of(writer, sync)
    while True:
        changes = list(
            SyncPlannedChange.objects.filter(run_id=held_id, pk__gt=last).order_by("pk")[
                :PLANNED_CHUNK
            ]
        )
        if not changes:
            return
        last = changes[-1].pk
        states = {
            key: row_hash
            for key, row_hash in SyncRecordState.objects.filter(
                sync=sync, key__in=[c.key for c in changes]
            ).values_list("key", "row_hash")
        }
        items = []
        for change in changes:
            done = (
                change.key not in states
                if change.kind == ChangeKind.REMOVED
                else states.get(change.key) == change.row_hash
            )
            if done:  # acknowledged already (an earlier attempt of this run)
                continue
            stored = change.record or {}
            items.append(
                ChangeItem(
                    change.kind,
                    change.key,
                    change.row_hash,
                    stored.get("record", {}),
                    stored.get("limited", {}),
                )
            )
        for batch in batches_of(iter(items), size):
            send_items(ctx, writer, batch)


# --- ends ----------------------------------------------------------------------------------


def _counts(run: SyncRun) -> dict[str, Any]:
    return {
        name: getattr(run, name)
        for name in ("source_rows", "planned", "added", "changed", "removed", "rejected", "skipped")
    }


def _event_data(run: SyncRun) -> dict[str, Any]:
    sync = run.sync
    return {
        "run_id": run.pk,
        "sync_id": sync.pk,
        "sync": sync.name,
        "destination": sync.destination.name,
        "trigger": run.trigger,
        "dry_run": run.dry_run,
        "counts": _counts(run),
    }


def _end(ctx: RunContext, values: dict[str, Any], *, held: bool = False) -> bool:
    """Record the end of this attempt with its event (and incident), unless another
    attempt took the run over."""
    run, sync = ctx.run, ctx.sync
    values.setdefault("finished_at", timezone.now())
    values["detail"] = {**run.detail, **values.get("detail", {}), "timings": ctx.timings}
    with transaction.atomic():
        ended = SyncRun.objects.filter(
            pk=run.pk, status=SyncRunStatus.RUNNING, attempts=ctx.attempt
        ).update(**values)
        if not ended:
            return False
        run.refresh_from_db()
        status = run.status
        people = [sync.created_by_id]
        if held:
            product_event_emit(
                "portal.sync_run.held",
                product=sync.product,
                people=people,
                data={
                    **_event_data(run),
                    "guardrails": sorted({r["guardrail"] for r in run.held_reasons}),
                    "held_reasons": [r["message"] for r in run.held_reasons],
                },
            )
            incident_open(
                product=sync.product,
                cause=IncidentCause.SYNC,
                cause_key=sync_cause_key(sync.pk),
                title=f"Sync {sync.name} held for approval",
                body=SYNC_INCIDENT_BODY,
                # Held reasons quote values of the creator's read (a column's sum, the
                # offending records): not for every reader of the product's incidents.
                detail="; ".join(r["message"] for r in run.held_reasons)[:2000],
            )
            return True
        product_event_emit(
            "portal.sync_run.finished",
            product=sync.product,
            people=people,
            data={
                **_event_data(run),
                "status": status,
                "error": run.error,
                "started_at": run.started_at.isoformat() if run.started_at else None,
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            },
        )
    return True


def _succeed(ctx: RunContext) -> None:
    sync = ctx.sync
    with transaction.atomic():
        if not _end(ctx, {"status": SyncRunStatus.SUCCEEDED, "error": ""}):
            return
        Sync.objects.filter(pk=sync.pk).update(consecutive_failures=0)
        incident_recover(
            cause_key=sync_cause_key(sync.pk), note=f"Sync run {ctx.run.pk} succeeded."
        )


def _fail(ctx: RunContext, error: str, *, pause: str = "", technical: str = "") -> None:
    """Fail the run; count the failure, and pause the sync at its breaker (or at once
    when `pause` says why), telling its creator."""
    sync = ctx.sync
    values: dict[str, Any] = {"status": SyncRunStatus.FAILED, "error": error[:4000]}
    if technical:
        values["detail"] = {"technical": technical[:4000]}
    with transaction.atomic():
        if not _end(ctx, values):
            return
        if ctx.run.dry_run:
            return
        Sync.objects.filter(pk=sync.pk).update(consecutive_failures=F("consecutive_failures") + 1)
        sync.refresh_from_db()
        incident_open(
            product=sync.product,
            cause=IncidentCause.SYNC,
            cause_key=sync_cause_key(sync.pk),
            title=f"Sync {sync.name} failed",
            body=SYNC_INCIDENT_BODY,
            # The error may quote the creator's data (a duplicate key): the sync's page and
            # the incident's detail (the domain's members) say it, not every reader.
            detail="\n".join(part for part in (error, technical) if part)[:4000],
        )
        if sync.status == SyncStatus.PAUSED:
            return
        if not pause and sync.consecutive_failures >= sync.breaker_failures:
            pause = f"Paused after {sync.consecutive_failures} failed runs in a row; last: {error}"
        if pause:
            sync_paused(sync=sync, reason=pause)
            notification_create(
                user=sync.created_by,
                title=f"Your sync {sync.name} was paused",
                body=pause,
                product=sync.product,
                key=f"sync-paused:{sync.pk}:{ctx.run.pk}",
            )


# --- the reaper ----------------------------------------------------------------------------


def sync_runs_reap(*, now: datetime | None = None) -> int:
    """Runs whose worker died (no heartbeat for SYNC_HEARTBEAT_TIMEOUT) are queued again,
    the same run (same idempotency keys), up to SYNC_MAX_ATTEMPTS attempts, then failed.
    Queued runs whose message was lost are sent again. Returns how many were re-sent."""
    now = now or timezone.now()
    timeout = settings.SYNC_HEARTBEAT_TIMEOUT
    resent = 0
    stale = SyncRun.objects.filter(status=SyncRunStatus.RUNNING).filter(
        Q(heartbeat_at__lt=now - timeout)
        | Q(heartbeat_at__isnull=True, started_at__lt=now - timeout)
    )
    for run in stale.select_related("sync__product", "sync__destination", "sync__created_by"):
        lost = [
            *run.detail.get("lost_attempts", []),
            {"attempt": run.attempts, "at": now.isoformat()},
        ]
        with transaction.atomic():
            if run.attempts < settings.SYNC_MAX_ATTEMPTS:
                if SyncRun.objects.filter(
                    pk=run.pk, status=SyncRunStatus.RUNNING, attempts=run.attempts
                ).update(
                    status=SyncRunStatus.QUEUED,
                    heartbeat_at=now,
                    detail={**run.detail, "lost_attempts": lost},
                ):
                    sync_run_enqueue(run)
                    resent += 1
            else:
                run.detail = {**run.detail, "lost_attempts": lost}
                _fail(
                    RunContext(run=run, sync=run.sync, attempt=run.attempts),
                    f"The worker stopped during the run ({run.attempts} attempts, no sign of "
                    f"life for {timeout}).",
                )
    lost_after = now - settings.TASK_REDISPATCH_AFTER
    resent += redispatch_unclaimed(
        SyncRun.objects.filter(status=SyncRunStatus.QUEUED).filter(
            Q(heartbeat_at__lt=lost_after) | Q(heartbeat_at__isnull=True, created_at__lt=lost_after)
        ),
        SYNC_RUN_TASK,
    )
    return resent


# --- the dead-letter list ------------------------------------------------------------------


def rejected_records_csv(*, sync: Sync) -> Iterator[str]:
    """The open rejected records of a sync as CSV lines (header first): key, kind, run,
    when, the destination's reason, the record as JSON."""

    def line(values: list[Any]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer).writerow(values)
        return buffer.getvalue()

    yield line(["key", "kind", "run", "rejected_at", "reason", "record"])
    records = SyncRejectedRecord.objects.filter(sync=sync, resolved_at__isnull=True).order_by("pk")
    for record in records.iterator(chunk_size=2000):
        yield line(
            [
                record.key,
                record.kind,
                record.run_id,
                record.rejected_at.isoformat(),
                record.reason,
                json.dumps(record.record, ensure_ascii=False),
            ]
        )
