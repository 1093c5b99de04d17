"""Sync runs: requested (by hand, a schedule, a passing check run, an approval), claimed
once by a worker, planned (sharing.syncs.planning), checked by the guardrails
(sharing.syncs.guardrails), then sent in batches to the destination's writer. After each
batch, in one portal transaction, the state advances for the records the destination
acknowledged, rejected records are kept (the dead-letter list), and the run's counts
move on. A run a dead worker left running is queued again by the reaper and resumes
with the same run id (so the same idempotency keys): what was acknowledged is in the
state already, and the re-plan sends the rest.

A run reads with its creator's access, decided again at every run (read_plan with the
sync channel): losing it fails the run and pauses the sync. A held run's plan is stored
record by record (SyncPlannedChange), and approving it sends exactly that plan."""

from __future__ import annotations

import csv
import io
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from portal.core.json_values import data_value, non_finite_as_text
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
from sharing.serving.source_errors import source_error_message
from sharing.syncs.destinations import destination_writer
from sharing.syncs.destinations.base import (
    BatchOutcome,
    DestinationError,
    OutgoingBatch,
)
from sharing.syncs.guardrails import ColumnLimitCheck, count_guardrails
from sharing.syncs.metric_source import batch_key_counts, batch_scan_csv, metric_source_batch
from sharing.syncs.planning import (
    SyncDiff,
    diff_plan,
    first_run_diff,
    key_counts,
    key_values,
    read_ahead,
    rows_sql,
    scan_copy,
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
FETCH_BATCH_ROWS = 20_000  # source rows turned into records (JSON values) at once
COLUMN_BATCH_ROWS = 100_000  # source rows a table writer takes at once as Arrow columns
PLANNED_CHUNK = 2_000
TABLE_BATCH = 5_000  # records per batch to a table or NATS writer (HTTP: the destination's)
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


class _Stop(Exception):
    """The run ends early: failed (with a reason for people), held, or cancelled."""

    def __init__(self, error: str, *, pause: str = "", technical: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.pause = pause
        self.technical = technical


class _Lost(Exception):
    """Another attempt owns the run now (this worker was presumed dead)."""


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


@dataclass
class _Item:
    kind: str
    key: str
    row_hash: str
    record: dict
    limited: dict = field(default_factory=dict)


@dataclass
class _Context:
    run: SyncRun
    sync: Sync
    attempt: int
    plan: ReadPlan | None = None
    diff: SyncDiff | None = None  # its temporary tables are dropped when the run ends
    # Whether the sync has open rejected records to resolve (checked once, then kept).
    open_rejected: bool | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: {"added": 0, "changed": 0, "removed": 0, "rejected": 0}
    )
    timings: dict[str, float] = field(default_factory=dict)
    # The sync had no state when this run planned: acknowledged keys are new rows of it.
    fresh_state: bool = False
    recorder: _Recorder | None = None
    # A metric sync's values (an Arrow batch of key, hash, columns), evaluated once per
    # run: what the plan diffs is what the run sends.
    metric_batch: Any = None

    @property
    def limited_columns(self) -> list[str]:
        return [limit["column"] for limit in self.sync.column_limits or []]


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return non_finite_as_text(value)
    return data_value(value)


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
    ctx = _Context(run=run, sync=run.sync, attempt=run.attempts)
    try:
        with _Heartbeat(run.pk, ctx.attempt):
            _execute(ctx)
    except _Lost:
        logger.warning("sync run %s: taken over by a later attempt", run_id)
    except _Stop as stop:
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


def _execute(ctx: _Context) -> None:
    run, sync = ctx.run, ctx.sync
    if sync.status == SyncStatus.PAUSED and not run.dry_run:
        raise _Stop(f"The sync was paused ({sync.paused_reason}) before this run started.")
    if sync.loop_warning and not sync.column_limits:
        raise _Stop(f"{sync.loop_warning} {LOOP_LIMITS_NEEDED}")
    if sync.metric_id is None:  # a metric's evaluation decides access for itself
        ctx.plan = _plan_read(ctx)
    key_fields = [destination_field(sync, c) for c in sync.key_columns]
    with destination_writer(sync.destination, key_fields=key_fields, run_id=run.pk) as writer:
        started = time.monotonic()
        try:
            writer.check()
        except DestinationError as exc:
            raise _Stop(
                f"The destination {sync.destination.name!r} cannot be used: {exc.message}",
                technical=exc.technical,
            ) from exc
        ctx.timings["check_s"] = round(time.monotonic() - started, 3)
        if run.approves_id is not None:
            with _recording(ctx):
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
        with _recording(ctx):
            _send_changes(ctx, writer, diff)
        ctx.timings["send_s"] = round(time.monotonic() - started, 3)
        _succeed(ctx)


def _guardrail_reasons(ctx: _Context, diff: SyncDiff) -> list[dict]:
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


def _plan_read(ctx: _Context) -> ReadPlan:
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
        raise _Stop(message, pause=f"Access lost: {exc.message}") from exc
    masked = [c for c in sync.key_columns if c in plan.masked]
    if masked:
        message = (
            f"Key column(s) {', '.join(masked)} are masked in {creator.username}'s access now: "
            "the sync cannot identify records."
        )
        raise _Stop(message, pause=message)
    plan.detail = {"sync": sync.pk, "sync_run": ctx.run.pk}
    return plan


def _source_stop(ctx: _Context, exc: ConnectorError) -> _Stop:
    sync = ctx.sync
    return _Stop(
        source_error_message(user=sync.created_by, product=sync.product, exc=exc),
        technical=exc.technical,
    )


def _diff(ctx: _Context) -> SyncDiff:
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
        raise _Stop(
            f"The key ({', '.join(sync.key_columns)}) is not unique in the source: "
            f"{diff.counts.duplicate} appears more than once. Choose key columns that "
            "identify one row each; nothing was sent."
        )
    return diff


def _port_diff(ctx: _Context, first: bool) -> SyncDiff:
    """One governed (key, hash) read of the port, audited once per run."""
    plan, sync, run = ctx.plan, ctx.sync, ctx.run
    error = ""
    diff = None
    try:
        with connector_for_port(plan.port) as connector:
            if first:  # every key is added: counted on the source, no keys copied
                counts = key_counts(plan, connector, sync.key_columns)
                diff = first_run_diff(sync_id=sync.pk, run_id=run.pk, counts=counts)
            else:
                diff = diff_plan(
                    sync_id=sync.pk,
                    run_id=run.pk,
                    scan=scan_copy(plan, connector, sync.key_columns),
                )
    except ConnectorError as exc:
        error = exc.technical
        raise _source_stop(ctx, exc) from exc
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


def _metric_diff(ctx: _Context, first: bool) -> SyncDiff:
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
        raise _Stop(message, pause=pause) from exc
    if first:
        return first_run_diff(sync_id=sync.pk, run_id=run.pk, counts=batch_key_counts(batch))
    return diff_plan(sync_id=sync.pk, run_id=run.pk, scan=("csv, HEADER", batch_scan_csv(batch)))


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


def _kinds(sync: Sync) -> tuple[str, ...]:
    if sync.mode == SyncMode.INSERT:
        return (ChangeKind.ADDED,)
    if sync.mode == SyncMode.MIRROR:
        return (ChangeKind.ADDED, ChangeKind.CHANGED, ChangeKind.REMOVED)
    return (ChangeKind.ADDED, ChangeKind.CHANGED)


def _operation(sync: Sync, kind: str) -> str:
    if kind == ChangeKind.REMOVED:
        return "delete"
    return {SyncMode.INSERT: "insert", SyncMode.UPDATE: "update"}.get(sync.mode, "upsert")


def _field_pairs(sync: Sync) -> list[tuple[str, str]]:
    """(source column, destination field) of every column sent."""
    return [(column, destination_field(sync, column)) for column in sync.columns]


def _removal_record(sync: Sync, key: str) -> dict:
    return {
        destination_field(sync, c): value
        for c, value in zip(sync.key_columns, key_values(key), strict=True)
    }


def _source_batches(
    ctx: _Context, diff: SyncDiff, *, batch_rows: int = FETCH_BATCH_ROWS
) -> Iterator[tuple[str, Any]]:
    """(kind, Arrow batch of key, hash, then the selected columns as served) of the added
    and changed records this run sends, one kind per batch, read again from the source
    through the same plan (its hash taken in the same statement, so the state keeps the
    hash of what was sent)."""
    sync = ctx.sync
    wanted = tuple(k for k in _kinds(sync) if k != ChangeKind.REMOVED)
    if not wanted:
        return
    everything_added = diff.counts.state_rows == 0 and wanted[0] == ChangeKind.ADDED
    # Lazy: pyarrow only in the processes that read Arrow (the worker).
    import pyarrow as pa

    kinds: list[tuple[str, Any]] = []
    if not everything_added:
        for kind in wanted:
            keys = diff.key_set((kind,))
            if keys:
                kinds.append((kind, pa.array(list(keys), pa.string())))
        if not kinds:
            return
    # Read a batch ahead in a thread of its own (the plan's keys were read above, on this
    # thread's portal session, which holds them): the source computes the next batch while
    # the destination writes this one.
    yield from read_ahead(_read_source(ctx, everything_added, kinds, batch_rows), depth=2)


def _read_source(
    ctx: _Context, everything_added: bool, kinds: list[tuple[str, Any]], batch_rows: int
) -> Iterator[tuple[str, Any]]:
    sync, plan = ctx.sync, ctx.plan
    if ctx.metric_batch is not None:  # the values this run planned with
        values = ctx.metric_batch
        batches = (values.slice(at, batch_rows) for at in range(0, values.num_rows, batch_rows))
        yield from _planned_parts(batches, everything_added, kinds)
        return
    try:
        with connector_for_port(plan.port) as connector:
            sql, params = rows_sql(
                plan, connector, sync.key_columns, placeholder=connector.arrow_placeholder
            )
            batches = connector.arrow_batches(sql, params, batch_rows=batch_rows)
            yield from _planned_parts(batches, everything_added, kinds)
    except ConnectorError as exc:
        raise _source_stop(ctx, exc) from exc


def _planned_parts(
    batches, everything_added: bool, kinds: list[tuple[str, Any]]
) -> Iterator[tuple[str, Any]]:
    """(kind, part of a source batch): only the planned rows are sent."""
    import pyarrow.compute as pc  # lazy, as in _source_batches

    for batch in batches:
        if everything_added:
            yield ChangeKind.ADDED, batch
            continue
        for kind, keys in kinds:
            part = batch.filter(pc.is_in(batch.column(0), value_set=keys))
            if part.num_rows:
                yield kind, part


def _json_columns(batch) -> list[list]:
    """The batch's columns as JSON values, converted in Arrow where it can be done
    exactly: integers, text and booleans as they are; doubles when all are finite;
    PostgreSQL numerics of at most 15 digits as doubles (exact, as decimal_value would
    give them); anything else value by value (python_columns, then _jsonable)."""
    # Lazy: pyarrow only in the processes that read Arrow (a run, not a starting worker).
    import pyarrow as pa
    import pyarrow.compute as pc

    from sharing.serving.arrow_values import numeric_decimal_type, python_columns

    plain = (pa.types.is_integer, pa.types.is_string, pa.types.is_large_string, pa.types.is_boolean)
    columns: list[list | None] = [None] * batch.num_columns
    slow: list[int] = []
    for index, (field_, array) in enumerate(zip(batch.schema, batch.columns, strict=True)):
        kind = field_.type
        if any(test(kind) for test in plain):
            columns[index] = array.to_pylist()
            continue
        if isinstance(kind, pa.BaseExtensionType) and getattr(kind, "type_name", "") == "numeric":
            decimal = numeric_decimal_type(field_)
            if pa.types.is_decimal(decimal) and decimal.precision <= 15:
                try:
                    array = pc.cast(array.storage, pa.float64())
                    kind = pa.float64()
                except pa.ArrowInvalid:  # a text Arrow does not read as a number
                    slow.append(index)
                    continue
        if pa.types.is_floating(kind) and pc.all(pc.is_finite(array)).as_py() is not False:
            columns[index] = pc.cast(array, pa.float64()).to_pylist()
            continue
        slow.append(index)
    if slow:
        converted = python_columns(batch.select(slow))
        for index, values in zip(slow, converted, strict=True):
            columns[index] = [None if v is None else _jsonable(v) for v in values]
    return columns


def _send_changes(ctx: _Context, writer, diff: SyncDiff) -> None:
    """Every planned change to the destination. A table writer takes each source batch as
    Arrow columns (no value becomes a Python object) unless it asks for records; the
    others take records (JSON values) in batches of their size."""
    size = _batch_size(writer, ctx.sync)
    send_columns = getattr(writer, "send_columns", None)
    rows = FETCH_BATCH_ROWS if send_columns is None else COLUMN_BATCH_ROWS
    for kind, batch in _source_batches(ctx, diff, batch_rows=rows):
        if send_columns is None or not _send_batch_columns(ctx, send_columns, kind, batch):
            for offset in range(0, batch.num_rows, FETCH_BATCH_ROWS):
                part = batch.slice(offset, FETCH_BATCH_ROWS)
                for items in _batches(_batch_items(ctx, kind, part), size):
                    _send(ctx, writer, items)
    for items in _batches(_removal_items(ctx, diff), size):
        _send(ctx, writer, items)


def _items(ctx: _Context, diff: SyncDiff) -> Iterator[_Item]:
    for kind, batch in _source_batches(ctx, diff):
        yield from _batch_items(ctx, kind, batch)
    yield from _removal_items(ctx, diff)


def _source_rows(ctx: _Context, diff: SyncDiff) -> Iterator[tuple[str, str, str, dict]]:
    """(kind, key, hash, source values as JSON values) of the records this run sends."""
    for kind, batch in _source_batches(ctx, diff):
        for key, row_hash, values in _batch_rows(batch):
            yield kind, key, row_hash, values


def _batch_rows(batch) -> Iterator[tuple[str, str, dict]]:
    """(key, hash, source column -> JSON value) of each row of a source batch."""
    names = batch.schema.names[2:]
    for row in zip(*_json_columns(batch), strict=True):
        yield row[0], row[1], dict(zip(names, row[2:], strict=True))


def _batch_items(ctx: _Context, kind: str, batch) -> Iterator[_Item]:
    """The records of a source batch as JSON values (destination field -> value)."""
    limited = ctx.limited_columns
    pairs = _field_pairs(ctx.sync)
    for key, row_hash, values in _batch_rows(batch):
        yield _Item(
            kind,
            key,
            row_hash,
            {target: values[column] for column, target in pairs},
            {c: values.get(c) for c in limited} if limited else {},
        )


def _removal_items(ctx: _Context, diff: SyncDiff) -> Iterator[_Item]:
    sync = ctx.sync
    if sync.mode != SyncMode.MIRROR:
        return
    for chunk in diff.keys(ChangeKind.REMOVED):
        for key, _ in chunk:
            yield _Item(ChangeKind.REMOVED, key, "", _removal_record(sync, key))


def _send_batch_columns(ctx: _Context, send_columns, kind: str, batch) -> bool:
    """A source batch to a table destination as Arrow columns named by destination field,
    then its outcome recorded. False when the writer asks for records instead."""
    import pyarrow as pa  # lazy, as in _source_batches

    sync = ctx.sync
    fields = [batch.schema.field(column).with_name(target) for column, target in _field_pairs(sync)]
    table = pa.RecordBatch.from_arrays(
        [batch.column(column) for column in sync.columns], schema=pa.schema(fields)
    )
    started = time.monotonic()
    try:
        outcome = send_columns(_operation(sync, kind), table)
    except DestinationError as exc:
        raise _Stop(
            f"The destination {sync.destination.name!r} failed: {exc.message}",
            technical=exc.technical,
        ) from exc
    if outcome is None:
        return False
    _add_time(ctx, "destination_s", time.monotonic() - started)
    keys, hashes = batch.column(0), batch.column(1)
    limited = None
    if ctx.limited_columns:
        columns = _json_columns(batch.select(ctx.limited_columns))
        limited = [
            dict(zip(ctx.limited_columns, row, strict=True)) for row in zip(*columns, strict=True)
        ]
    acked = outcome.acked
    if len(acked) < batch.num_rows:
        taken = pa.array(acked, pa.int64())
        keys, hashes = keys.take(taken), hashes.take(taken)
        limited = [limited[i] for i in acked] if limited is not None else None
    rejected = []
    if outcome.rejected:
        indexes = sorted(outcome.rejected)
        for index, item in zip(
            indexes, _batch_items(ctx, kind, batch.take(pa.array(indexes))), strict=True
        ):
            rejected.append((item.key, item.record, outcome.rejected[index]))
    ctx.recorder.record(kind, _Acked(keys, hashes, limited), rejected)
    return True


def _add_time(ctx: _Context, name: str, seconds: float) -> None:
    """Where a run's time went (the run's detail, the benchmark)."""
    ctx.timings[name] = round(ctx.timings.get(name, 0) + seconds, 3)


def _batches(items: Iterator[_Item], size: int) -> Iterator[list[_Item]]:
    """Consecutive items of one kind, at most `size` at a time."""
    batch: list[_Item] = []
    for item in items:
        if batch and (len(batch) >= size or batch[0].kind != item.kind):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _batch_size(writer, sync: Sync) -> int:
    own = getattr(writer, "batch_size", None)
    if own:
        return int(own)
    if sync.destination.kind == "http":
        return max(1, sync.destination.batch_size)
    return TABLE_BATCH


def _send(ctx: _Context, writer, items: list[_Item]) -> None:
    """One batch to the destination, then, in one portal transaction, the state of what it
    acknowledged, the rejected records and the run's counts. A destination that cannot
    be reached stops the run (nothing of this batch acknowledged)."""
    run = ctx.run
    operation = _operation(ctx.sync, items[0].kind)
    batch = OutgoingBatch(
        operation=operation,
        keys=[item.key for item in items],
        records=[item.record for item in items],
        idempotency_keys=[f"{run.pk}:{item.key}" for item in items],
    )
    started = time.monotonic()
    try:
        outcome: BatchOutcome = writer.send(batch)
    except DestinationError as exc:
        raise _Stop(
            f"The destination {ctx.sync.destination.name!r} failed: {exc.message}",
            technical=exc.technical,
        ) from exc
    _add_time(ctx, "destination_s", time.monotonic() - started)
    acked = [items[i] for i in outcome.acked]
    ctx.recorder.record(
        items[0].kind,
        _Acked(
            [item.key for item in acked],
            [item.row_hash for item in acked],
            [item.limited for item in acked],
        ),
        [(items[i].key, items[i].record, reason) for i, reason in outcome.rejected.items()],
    )


@dataclass
class _Acked:
    """The keys a destination acknowledged, with their hashes and limited values (None:
    no column has limits): Python lists, or Arrow arrays from the columnar path."""

    keys: Any
    hashes: Any
    limited: list[dict] | None = None

    def key_list(self) -> list[str]:
        return self.keys if isinstance(self.keys, list) else self.keys.to_pylist()


class _Recorder:
    """Records each sent batch's outcome (_record_outcome) in order, on PostgreSQL in a
    thread of its own while the next batch goes to the destination (one batch waits at
    most). Inline on SQLite, and when the caller holds a transaction: another connection
    would not see its rows."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.threaded = connection.vendor == "postgresql" and not connection.in_atomic_block
        self.waiting: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def record(self, kind: str, acked: _Acked, rejected: list[tuple[str, dict, str]]) -> None:
        if not self.threaded:
            self._record(kind, acked, rejected)
            return
        self.raise_error()
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._work, name=f"sync-{self.ctx.run.pk}-state", daemon=True
            )
            self.thread.start()
        self.waiting.put((kind, acked, rejected))

    def _record(self, kind: str, acked: _Acked, rejected: list) -> None:
        started = time.monotonic()
        _record_outcome(self.ctx, kind, acked, rejected)
        _add_time(self.ctx, "state_s", time.monotonic() - started)

    def _work(self) -> None:
        try:
            while (batch := self.waiting.get()) is not None:
                if self.error is None:  # after an error: drain, so that senders never block
                    try:
                        self._record(*batch)
                    except BaseException as exc:  # noqa: BLE001 - raised in the run's thread
                        self.error = exc
        finally:
            connection.close()  # this thread's own connection

    def finish(self) -> None:
        """Wait until every batch handed over is recorded."""
        if self.thread is not None:
            self.waiting.put(None)
            self.thread.join()
            self.thread = None

    def raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error


@contextmanager
def _recording(ctx: _Context):
    """Outcomes recorded while the block sends; all of them recorded when it ends, even
    when it ends with an error (what the destination acknowledged is kept)."""
    ctx.recorder = _Recorder(ctx)
    try:
        yield
    except BaseException:
        ctx.recorder.finish()
        if ctx.recorder.error is not None:
            error = ctx.recorder.error
            logger.error("sync run %s: recording failed too", ctx.run.pk, exc_info=error)
        raise
    ctx.recorder.finish()
    ctx.recorder.raise_error()


def _record_outcome(
    ctx: _Context, kind: str, acked: _Acked, rejected: list[tuple[str, dict, str]]
) -> None:
    """In one portal transaction: the state of the acknowledged keys, the rejected records
    (key, record, reason) kept, the run's counts moved on."""
    run, sync = ctx.run, ctx.sync
    now = timezone.now()
    count = len(acked.keys)
    with transaction.atomic():
        if kind == ChangeKind.REMOVED:
            SyncRecordState.objects.filter(sync=sync, key__in=acked.key_list()).delete()
        else:
            _state_upsert(ctx, acked, at=now)
        if ctx.open_rejected is None:
            ctx.open_rejected = SyncRejectedRecord.objects.filter(
                sync=sync, resolved_at__isnull=True
            ).exists()
        if ctx.open_rejected and (count or rejected):
            # Acked: resolved; rejected again: the new rejection supersedes the old one.
            touched = acked.key_list() + [key for key, _, _ in rejected]
            SyncRejectedRecord.objects.filter(
                sync=sync, key__in=touched, resolved_at__isnull=True
            ).update(resolved_at=now)
        SyncRejectedRecord.objects.bulk_create(
            [
                SyncRejectedRecord(
                    sync=sync, run=run, kind=kind, key=key, record=record, reason=str(reason)[:2000]
                )
                for key, record, reason in rejected
            ]
        )
        ctx.open_rejected = ctx.open_rejected or bool(rejected)
        ctx.counts[kind] += count
        ctx.counts["rejected"] += len(rejected)
        updated = SyncRun.objects.filter(
            pk=run.pk, status=SyncRunStatus.RUNNING, attempts=ctx.attempt
        ).update(
            **{kind: F(kind) + count},
            rejected=F("rejected") + len(rejected),
            heartbeat_at=now,
        )
        if not updated:
            raise _Lost()


def _state_upsert(ctx: _Context, acked: _Acked, *, at: datetime) -> None:
    """The acknowledged keys' state. PostgreSQL: their CSV copied (straight into the table
    on a sync's first run, when every key is new; else through a temporary table and one
    INSERT ... ON CONFLICT)."""
    if not len(acked.keys):
        return
    sync, run = ctx.sync, ctx.run
    limited = acked.limited if acked.limited and any(acked.limited) else None
    if connection.vendor != "postgresql":
        SyncRecordState.objects.bulk_create(
            [
                SyncRecordState(
                    sync=sync,
                    key=key,
                    row_hash=row_hash,
                    limited_values=values or None,
                    run=run,
                    acked_at=at,
                )
                for key, row_hash, values in zip(
                    acked.key_list(),
                    acked.hashes if isinstance(acked.hashes, list) else acked.hashes.to_pylist(),
                    limited or [None] * len(acked.keys),
                    strict=True,
                )
            ],
            update_conflicts=True,
            unique_fields=["sync", "key"],
            update_fields=["row_hash", "limited_values", "run", "acked_at"],
        )
        return
    import pyarrow as pa  # lazy, as in _source_batches

    from sharing.serving.arrow_values import copy_csv

    count = len(acked.keys)
    columns = {
        "sync_id": pa.repeat(pa.scalar(sync.pk, pa.int64()), count),
        "key": _strings(acked.keys),
        "row_hash": _strings(acked.hashes),
        "run_id": pa.repeat(pa.scalar(run.pk, pa.int64()), count),
    }
    if limited:
        columns["limited_values"] = pa.array([_json_text(v) for v in limited], pa.string())
    data = copy_csv(pa.RecordBatch.from_pydict(columns))
    names = ", ".join(columns)
    table = SyncRecordState._meta.db_table
    with connection.cursor() as cur:
        if ctx.fresh_state:  # acked_at: the table's default, this transaction's time
            with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(data)
            return
        cur.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS sync_acked (sync_id bigint, "
            'key text COLLATE "C", row_hash text, run_id bigint, limited_values jsonb)'
        )
        with cur.copy(f"COPY sync_acked ({names}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(data)
        cur.execute(
            f"INSERT INTO {table} (sync_id, key, row_hash, run_id, limited_values, acked_at) "
            "SELECT sync_id, key, row_hash, run_id, limited_values, now() FROM sync_acked "
            "ON CONFLICT (sync_id, key) DO UPDATE SET "
            "row_hash = EXCLUDED.row_hash, limited_values = EXCLUDED.limited_values, "
            "run_id = EXCLUDED.run_id, acked_at = EXCLUDED.acked_at"
        )
        cur.execute("TRUNCATE sync_acked")


def _strings(values):
    """Text values (a list, or an Arrow array from the columnar path) as an Arrow array."""
    import pyarrow as pa  # lazy, as in _source_batches

    return pa.array(values, pa.string()) if isinstance(values, list) else values


def _json_text(value: dict) -> str:
    return json.dumps(value, allow_nan=False) if value else "{}"


# --- dry runs, guardrails, holds, approvals ----------------------------------------------


def _before(sync: Sync, keys: list[str]) -> dict[str, SyncRecordState]:
    return {
        state.key: state
        for state in SyncRecordState.objects.filter(sync=sync, key__in=keys).only(
            "key", "limited_values", "row_hash"
        )
    }


def _dry_run(ctx: _Context, diff: SyncDiff, *, would_hold: list[dict]) -> None:
    """The plan and a sample of each kind of change, as destination records, and what
    would hold a real run now (`held_reasons` of a planned run); nothing sent, no state
    changed."""
    sync = ctx.sync
    sample: dict[str, list] = {"added": [], "changed": [], "removed": []}
    for item in _items(ctx, diff):
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
            sample["removed"] = [_removal_record(sync, key) for key, _ in chunk[:SAMPLE_PER_KIND]]
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


def _column_limit_reasons(ctx: _Context, diff: SyncDiff) -> list[dict]:
    sync = ctx.sync
    check = ColumnLimitCheck(limits=sync.column_limits)
    pending: list[tuple[str, dict]] = []

    def flush() -> None:
        before = _before(sync, [key for key, _ in pending])
        for key, values in pending:
            state = before.get(key)
            check.add(key=key, values=values, before=state.limited_values if state else None)
        pending.clear()

    for kind, key, _hash, values in _source_rows(ctx, diff):
        if kind == ChangeKind.ADDED:
            check.add(key=key, values=values, before=None)
            continue
        pending.append((key, values))
        if len(pending) >= PLANNED_CHUNK:
            flush()
    flush()
    return check.reasons()


def _hold(ctx: _Context, diff: SyncDiff, reasons: list[dict]) -> None:
    """Store the exact plan, record by record, and hold the run for approval."""
    run = ctx.run
    chunk: list[SyncPlannedChange] = []
    for item in _items(ctx, diff):
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


def _send_approved(ctx: _Context, writer) -> None:
    """Send the held run's planned changes exactly, skipping those a previous attempt of
    this run got acknowledged (the state holds them already)."""
    sync = ctx.sync
    held_id = ctx.run.approves_id
    last = 0
    size = _batch_size(writer, sync)
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
                _Item(
                    change.kind,
                    change.key,
                    change.row_hash,
                    stored.get("record", {}),
                    stored.get("limited", {}),
                )
            )
        for batch in _batches(iter(items), size):
            _send(ctx, writer, batch)


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


def _end(ctx: _Context, values: dict[str, Any], *, held: bool = False) -> bool:
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


def _succeed(ctx: _Context) -> None:
    sync = ctx.sync
    with transaction.atomic():
        if not _end(ctx, {"status": SyncRunStatus.SUCCEEDED, "error": ""}):
            return
        Sync.objects.filter(pk=sync.pk).update(consecutive_failures=0)
        incident_recover(
            cause_key=sync_cause_key(sync.pk), note=f"Sync run {ctx.run.pk} succeeded."
        )


def _fail(ctx: _Context, error: str, *, pause: str = "", technical: str = "") -> None:
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
                    _Context(run=run, sync=run.sync, attempt=run.attempts),
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
