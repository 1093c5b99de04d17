"""Sending a sync run's changes: the planned rows read again from the source (or the
metric's values the run planned with), turned into destination records or handed to a
table writer as Arrow columns, sent in batches; each batch's outcome recorded (the state
of the acknowledged keys, the rejected records, the run's counts) in one portal
transaction, in a thread beside the sends. The run's context and its early ends
(RunStop, RunLost) live here too; sharing.syncs.services.runs drives a run."""

from __future__ import annotations

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

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from portal.core.json_values import json_value
from products.connectors import ConnectorError, connector_for_port
from sharing.models import Sync, SyncRecordState, SyncRejectedRecord, SyncRun
from sharing.models.syncs import ChangeKind, SyncMode, SyncRunStatus
from sharing.serving.reads import ReadPlan
from sharing.serving.source_errors import source_error_message
from sharing.syncs.destinations.base import BatchOutcome, DestinationError, OutgoingBatch
from sharing.syncs.planning import SyncDiff, key_values, read_ahead, rows_sql
from sharing.syncs.services.syncs import destination_field

logger = logging.getLogger(__name__)

FETCH_BATCH_ROWS = 20_000  # source rows turned into records (JSON values) at once
COLUMN_BATCH_ROWS = 100_000  # source rows a table writer takes at once as Arrow columns
TABLE_BATCH = 5_000  # records per batch to a table or NATS writer (HTTP: the destination's)


class RunStop(Exception):
    """The run ends early: failed (with a reason for people), held, or cancelled."""

    def __init__(self, error: str, *, pause: str = "", technical: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.pause = pause
        self.technical = technical


class RunLost(Exception):
    """Another attempt owns the run now (this worker was presumed dead)."""


@dataclass
class ChangeItem:
    kind: str
    key: str
    row_hash: str
    record: dict
    limited: dict = field(default_factory=dict)


@dataclass
class RunContext:
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


def source_stop(ctx: RunContext, exc: ConnectorError) -> RunStop:
    sync = ctx.sync
    return RunStop(
        source_error_message(user=sync.created_by, product=sync.product, exc=exc),
        technical=exc.technical,
    )


def kinds_sent(sync: Sync) -> tuple[str, ...]:
    if sync.mode == SyncMode.INSERT:
        return (ChangeKind.ADDED,)
    if sync.mode == SyncMode.MIRROR:
        return (ChangeKind.ADDED, ChangeKind.CHANGED, ChangeKind.REMOVED)
    return (ChangeKind.ADDED, ChangeKind.CHANGED)


def operation_of(sync: Sync, kind: str) -> str:
    if kind == ChangeKind.REMOVED:
        return "delete"
    return {SyncMode.INSERT: "insert", SyncMode.UPDATE: "update"}.get(sync.mode, "upsert")


def _field_pairs(sync: Sync) -> list[tuple[str, str]]:
    """(source column, destination field) of every column sent."""
    return [(column, destination_field(sync, column)) for column in sync.columns]


def removal_record(sync: Sync, key: str) -> dict:
    return {
        destination_field(sync, c): value
        for c, value in zip(sync.key_columns, key_values(key), strict=True)
    }


def _source_batches(
    ctx: RunContext, diff: SyncDiff, *, batch_rows: int = FETCH_BATCH_ROWS
) -> Iterator[tuple[str, Any]]:
    """(kind, Arrow batch of key, hash, then the selected columns as served) of the added
    and changed records this run sends, one kind per batch, read again from the source
    through the same plan (its hash taken in the same statement, so the state keeps the
    hash of what was sent)."""
    sync = ctx.sync
    wanted = tuple(k for k in kinds_sent(sync) if k != ChangeKind.REMOVED)
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
    ctx: RunContext, everything_added: bool, kinds: list[tuple[str, Any]], batch_rows: int
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
        raise source_stop(ctx, exc) from exc


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
    give them); anything else value by value (python_columns, then json_value)."""
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
            columns[index] = [None if v is None else json_value(v) for v in values]
    return columns


def send_changes(ctx: RunContext, writer, diff: SyncDiff) -> None:
    """Every planned change to the destination. A table writer takes each source batch as
    Arrow columns (no value becomes a Python object) unless it asks for records; the
    others take records (JSON values) in batches of their size."""
    size = batch_size_of(writer, ctx.sync)
    send_columns = getattr(writer, "send_columns", None)
    rows = FETCH_BATCH_ROWS if send_columns is None else COLUMN_BATCH_ROWS
    for kind, batch in _source_batches(ctx, diff, batch_rows=rows):
        if send_columns is None or not _send_batch_columns(ctx, send_columns, kind, batch):
            for offset in range(0, batch.num_rows, FETCH_BATCH_ROWS):
                part = batch.slice(offset, FETCH_BATCH_ROWS)
                for items in batches_of(_batch_items(ctx, kind, part), size):
                    send_items(ctx, writer, items)
    for items in batches_of(_removal_items(ctx, diff), size):
        send_items(ctx, writer, items)


def change_items(ctx: RunContext, diff: SyncDiff) -> Iterator[ChangeItem]:
    for kind, batch in _source_batches(ctx, diff):
        yield from _batch_items(ctx, kind, batch)
    yield from _removal_items(ctx, diff)


def source_rows(ctx: RunContext, diff: SyncDiff) -> Iterator[tuple[str, str, str, dict]]:
    """(kind, key, hash, source values as JSON values) of the records this run sends."""
    for kind, batch in _source_batches(ctx, diff):
        for key, row_hash, values in _batch_rows(batch):
            yield kind, key, row_hash, values


def _batch_rows(batch) -> Iterator[tuple[str, str, dict]]:
    """(key, hash, source column -> JSON value) of each row of a source batch."""
    names = batch.schema.names[2:]
    for row in zip(*_json_columns(batch), strict=True):
        yield row[0], row[1], dict(zip(names, row[2:], strict=True))


def _batch_items(ctx: RunContext, kind: str, batch) -> Iterator[ChangeItem]:
    """The records of a source batch as JSON values (destination field -> value)."""
    limited = ctx.limited_columns
    pairs = _field_pairs(ctx.sync)
    for key, row_hash, values in _batch_rows(batch):
        yield ChangeItem(
            kind,
            key,
            row_hash,
            {target: values[column] for column, target in pairs},
            {c: values.get(c) for c in limited} if limited else {},
        )


def _removal_items(ctx: RunContext, diff: SyncDiff) -> Iterator[ChangeItem]:
    sync = ctx.sync
    if sync.mode != SyncMode.MIRROR:
        return
    for chunk in diff.keys(ChangeKind.REMOVED):
        for key, _ in chunk:
            yield ChangeItem(ChangeKind.REMOVED, key, "", removal_record(sync, key))


def _send_batch_columns(ctx: RunContext, send_columns, kind: str, batch) -> bool:
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
        outcome = send_columns(operation_of(sync, kind), table)
    except DestinationError as exc:
        raise RunStop(
            f"The destination {sync.destination.name!r} failed: {exc.message}",
            technical=exc.technical,
        ) from exc
    if outcome is None:
        return False
    add_time(ctx, "destination_s", time.monotonic() - started)
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


def add_time(ctx: RunContext, name: str, seconds: float) -> None:
    """Where a run's time went (the run's detail, the benchmark)."""
    ctx.timings[name] = round(ctx.timings.get(name, 0) + seconds, 3)


def batches_of(items: Iterator[ChangeItem], size: int) -> Iterator[list[ChangeItem]]:
    """Consecutive items of one kind, at most `size` at a time."""
    batch: list[ChangeItem] = []
    for item in items:
        if batch and (len(batch) >= size or batch[0].kind != item.kind):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def batch_size_of(writer, sync: Sync) -> int:
    own = getattr(writer, "batch_size", None)
    if own:
        return int(own)
    if sync.destination.kind == "http":
        return max(1, sync.destination.batch_size)
    return TABLE_BATCH


def send_items(ctx: RunContext, writer, items: list[ChangeItem]) -> None:
    """One batch to the destination, then, in one portal transaction, the state of what it
    acknowledged, the rejected records and the run's counts. A destination that cannot
    be reached stops the run (nothing of this batch acknowledged)."""
    run = ctx.run
    operation = operation_of(ctx.sync, items[0].kind)
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
        raise RunStop(
            f"The destination {ctx.sync.destination.name!r} failed: {exc.message}",
            technical=exc.technical,
        ) from exc
    add_time(ctx, "destination_s", time.monotonic() - started)
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

    def __init__(self, ctx: RunContext) -> None:
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
        add_time(self.ctx, "state_s", time.monotonic() - started)

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
def recording(ctx: RunContext):
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
    ctx: RunContext, kind: str, acked: _Acked, rejected: list[tuple[str, dict, str]]
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
            raise RunLost()


def _state_upsert(ctx: RunContext, acked: _Acked, *, at: datetime) -> None:
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
