"""Planning a sync run, pushed down: the source returns each row's key (as canonical JSON
text) and an md5 of its selected values (masked where the creator's access masks them),
under the creator's row filter, in one governed statement; the portal compares that
stream with the acknowledged state (SyncRecordState) to find the added, changed and
removed keys.

On a PostgreSQL portal the state is held in the worker as sorted md5 words (StateIndex,
up to SYNC_PLAN_MEMORY_MB): the unchanged rows are set aside there as the source serves
them, and only the others reach a small join in the portal's SQL. A larger state is
diffed wholly in the portal's SQL (the scan copied into a temporary table, one full
join): the worker's memory stays bounded whatever the source's size. On SQLite (the
embedded demo, small) the diff is done in Python.

The same key and hash expressions serve the fetch of full rows (`rows_sql`), so the hash
a record's state keeps is the hash of exactly what was sent."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection

from products.connectors import Connector
from products.connectors.column_types import INTEGER, UUID, column_type
from sharing.access.filters import compile_clauses
from sharing.models import SyncRecordState
from sharing.serving.reads import ReadPlan, served_value_sql

SCAN_BATCH_ROWS = 100_000  # (key, hash) rows per Arrow batch of a plan's scan
SCAN_READ_AHEAD = 4  # batches the source may serve ahead: ~0.6 s of a source while the state loads
T = TypeVar("T")
KEY_CHUNK = 5_000  # keys read back from the portal's plan at once
STATE = SyncRecordState._meta.db_table
# Rows the state index left to SQL up to which each is looked up in the state by key
# (beyond, one hash join with the state is cheaper).
PROBED_CANDIDATES = 50_000


class DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


# Column types whose text never holds a character JSON escapes (digits, '-', hex): their
# JSON string is the text between quotes, without to_json (~0.2 s per 1,000,000 keys).
PLAIN_KEY_KINDS = (INTEGER, UUID)


def key_sql(connector: Connector, key_columns: list[str]) -> str:
    """The key's values as compact JSON text: '["42"]', '["FR","2024-01-01"]' (each value
    as text, null as null), the same on every engine and in Python (key_text)."""
    quote = connector.quote_ident
    if connector.dialect == "postgresql":
        plain = _plain_key_columns(connector, key_columns)
        parts = [
            f"COALESCE('\"' || CAST({quote(c)} AS TEXT) || '\"', 'null')"
            if c in plain
            else f"COALESCE(to_json(CAST({quote(c)} AS TEXT))::text, 'null')"
            for c in key_columns
        ]
        return "'[' || " + " || ',' || ".join(parts) + " || ']'"
    if connector.dialect == "spark":  # to_json of an array of strings: compact, null as null
        values = ", ".join(f"CAST({quote(c)} AS STRING)" for c in key_columns)
        return f"to_json(array({values}))"
    values = ", ".join(f"CAST({quote(c)} AS VARCHAR)" for c in key_columns)
    return f"CAST(to_json(list_value({values})) AS VARCHAR)"


def _plain_key_columns(connector: Connector, key_columns: list[str]) -> set[str]:
    """The key columns whose type, as the source describes it now (not as declared in the
    catalog, which may be stale), is one of PLAIN_KEY_KINDS."""
    types = {column.name: column.data_type for column in connector.describe()}
    return {c for c in key_columns if column_type(types.get(c, "")).kind in PLAIN_KEY_KINDS}


def key_text(values: list[Any]) -> str:
    return json.dumps(
        [None if v is None else str(v) for v in values], separators=(",", ":"), ensure_ascii=False
    )


def key_values(key: str) -> list[Any]:
    return json.loads(key)


def hash_sql(plan: ReadPlan, connector: Connector) -> str:
    """md5 of a canonical text of the selected values (as served: masked where masked)."""
    expressions = [served_value_sql(plan, connector, name) for name in plan.columns]
    if connector.dialect == "postgresql":
        return f"md5(CAST(ROW({', '.join(expressions)}) AS TEXT))"
    if connector.dialect == "spark":
        values = ", ".join(f"CAST({e} AS STRING)" for e in expressions)
        return f"md5(to_json(array({values})))"
    values = ", ".join(f"CAST({e} AS VARCHAR)" for e in expressions)
    return f"md5(CAST(to_json(list_value({values})) AS VARCHAR))"


def _where(plan: ReadPlan, connector: Connector, placeholder) -> tuple[str, list[Any]]:
    counter = iter(range(1, 1_000_000))
    where, params = compile_clauses(
        plan.clauses,
        quote=connector.quote_ident,
        placeholder=lambda: placeholder(next(counter)),
    )
    return (f" WHERE {where}" if where else ""), params


def scan_sql(
    plan: ReadPlan, connector: Connector, key_columns: list[str], *, placeholder
) -> tuple[str, list[Any]]:
    """SELECT key, hash of every row the plan serves."""
    where, params = _where(plan, connector, placeholder)
    sql = (
        f"SELECT {key_sql(connector, key_columns)} AS sync_key, {hash_sql(plan, connector)} "
        f"AS sync_hash FROM {connector.relation_sql()}{where}"
    )
    return sql, params


def rows_sql(
    plan: ReadPlan, connector: Connector, key_columns: list[str], *, placeholder
) -> tuple[str, list[Any]]:
    """SELECT key, hash, then the selected columns (as served) of every row."""
    where, params = _where(plan, connector, placeholder)
    values = ", ".join(
        f"{served_value_sql(plan, connector, name)} AS {connector.quote_ident(name)}"
        for name in plan.columns
    )
    sql = (
        f"SELECT {key_sql(connector, key_columns)} AS sync_key, {hash_sql(plan, connector)} "
        f"AS sync_hash, {values} FROM {connector.relation_sql()}{where}"
    )
    return sql, params


def scan_batches(plan: ReadPlan, connector: Connector, key_columns: list[str]) -> Iterator:
    """The (key, hash) of every row the plan serves, as Arrow batches (sync_key, sync_hash)
    of at most SCAN_BATCH_ROWS, in one governed statement on the source (from PostgreSQL:
    its binary COPY, read into Arrow by the ADBC driver)."""
    sql, params = scan_sql(plan, connector, key_columns, placeholder=connector.arrow_placeholder)
    return connector.arrow_batches(sql, params, batch_rows=SCAN_BATCH_ROWS)


def key_counts(
    plan: ReadPlan, connector: Connector, key_columns: list[str], *, key_unique: bool = False
) -> PlanCounts:
    """A first run's plan (nothing acknowledged yet, every key is added), pushed down: how
    many rows the plan serves and whether a key repeats, in one aggregate on the source
    (and, only when one does, a second naming it). No row leaves the source. Where the
    source guarantees the key unique (`key_unique`: Connector.key_is_unique), only the
    rows are counted: the distinct count is most of the aggregate's time."""
    where, params = _where(plan, connector, lambda i: connector.paramstyle)
    key = key_sql(connector, key_columns)
    relation = f"{connector.relation_sql()}{where}"
    if key_unique:
        rows = connector.fetch(f"SELECT count(*) FROM {relation}", params)[0][0]
        return PlanCounts(source_rows=rows, added=rows)
    rows, distinct = connector.fetch(
        f"SELECT count(*), count(DISTINCT {key}) FROM {relation}", params
    )[0]
    counts = PlanCounts(source_rows=rows, added=rows)
    if distinct != rows:
        found = connector.fetch(
            f"SELECT {key} FROM {relation} GROUP BY 1 HAVING count(*) > 1 LIMIT 1", params
        )
        counts.duplicate = found[0][0] if found else None
    return counts


@dataclass
class PlanCounts:
    source_rows: int = 0
    state_rows: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    duplicate: str | None = None


@dataclass
class SyncDiff:
    """The plan of one run: which keys are added, changed, removed, with the source's
    hash. Backed by temporary tables of the portal's PostgreSQL session, or by Python
    lists on SQLite."""

    sync_id: int
    run_id: int
    counts: PlanCounts = field(default_factory=PlanCounts)
    in_sql: bool = False
    # Nothing acknowledged yet (a first run): every key the source serves is added; the
    # plan holds no keys (key_counts), the run reads them all.
    all_added: bool = False
    _rows: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step of the plan

    @property
    def table(self) -> str:
        return f"sync_plan_{self.run_id}"

    @property
    def scan_table(self) -> str:  # the scan's rows in the portal, while the plan is made
        return f"sync_scan_{self.run_id}"

    @property
    def unseen_table(self) -> str:  # acknowledged keys no row matched (StateIndex)
        return f"sync_unseen_{self.run_id}"

    def _select(self, kind: str) -> tuple[str, list]:
        return (f"SELECT key, row_hash FROM {self.table} WHERE kind = %s", [kind])

    def keys(self, kind: str) -> Iterator[list[tuple[str, str]]]:
        """(key, hash) pairs of one kind, in chunks, in key order."""
        if not self.in_sql:
            rows = self._rows.get(kind, [])
            for start in range(0, len(rows), KEY_CHUNK):
                yield rows[start : start + KEY_CHUNK]
            return
        last = None
        select, params = self._select(kind)
        while True:
            with connection.cursor() as cur:
                if last is None:
                    cur.execute(f'{select} ORDER BY key COLLATE "C" LIMIT %s', [*params, KEY_CHUNK])
                else:
                    cur.execute(
                        f'{select} AND key COLLATE "C" > %s ORDER BY key COLLATE "C" LIMIT %s',
                        [*params, last, KEY_CHUNK],
                    )
                rows = cur.fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def key_set(self, kinds: tuple[str, ...]) -> set[str]:
        """The keys of these kinds (memory grows with the changes, not the source)."""
        found: set[str] = set()
        for kind in kinds:
            for chunk in self.keys(kind):
                found.update(key for key, _ in chunk)
        return found

    def drop(self) -> None:
        if self.in_sql:
            with connection.cursor() as cur:
                for table in (self.table, self.scan_table, self.unseen_table):
                    cur.execute(f"DROP TABLE IF EXISTS {table}")


def first_run_diff(*, sync_id: int, run_id: int, counts: PlanCounts) -> SyncDiff:
    return SyncDiff(sync_id=sync_id, run_id=run_id, counts=counts, all_added=True)


def diff_plan(
    *, sync_id: int, run_id: int, batches: Iterator, key_unique: bool = False
) -> SyncDiff:
    """Compare the (key, hash) batches (scan_batches; the first two columns of each) with
    the sync's state. `key_unique`: the source guarantees that no key repeats
    (Connector.key_is_unique), so the scan's keys need not be counted.

    On a PostgreSQL portal the source is read in a thread of its own from the start, while
    the state is loaded: into the worker (StateIndex) when it fits SYNC_PLAN_MEMORY_MB,
    where the unchanged rows are set aside as they arrive and only the rest reaches SQL;
    otherwise the whole scan is copied into the portal and joined with the state there."""
    if connection.vendor != "postgresql":
        return _diff_in_python(sync_id=sync_id, run_id=run_id, batches=batches)
    # Lazy: numpy and pyarrow only in the processes that plan (the worker).
    from sharing.syncs.state_index import BYTES_PER_KEY, StateIndex

    diff = SyncDiff(sync_id=sync_id, run_id=run_id, in_sql=True)
    diff.drop()
    step = _Steps(diff.timings)
    with ReadAhead(batches, depth=SCAN_READ_AHEAD) as source, connection.cursor() as cur:
        cur.execute(
            f"SELECT count(*), COALESCE(sum(octet_length(key)), 0) FROM {STATE} WHERE sync_id = %s",
            [sync_id],
        )
        state_rows, key_bytes = cur.fetchone()
        in_memory = (
            state_rows * BYTES_PER_KEY + key_bytes <= settings.SYNC_PLAN_MEMORY_MB << 20
            and key_bytes < 2**31  # an Arrow string array's offsets
        )
        # Room for the hash joins and aggregates of a large plan, for this session's plan
        # only (reset below): sorting a million keys on disk instead took most of the plan.
        cur.execute("SET work_mem = '128MB'")
        try:
            index = (
                StateIndex.load(sync_id, rows=state_rows, key_bytes=key_bytes)
                if in_memory
                else None
            )
            step("state_s")
            if index is not None:
                duplicate = _diff_with_state_index(cur, diff, index, source, step, key_unique)
            else:
                duplicate = _diff_in_sql(cur, diff, source, step, key_unique)
        except BaseException:
            # The source failed mid-scan (or the worker is stopping): the plan's tables
            # would outlive the run in the worker's session.
            diff.drop()
            raise
        finally:
            cur.execute("RESET work_mem")
        if duplicate is not None:
            diff.counts.duplicate = duplicate
            return diff
        cur.execute(f"DROP TABLE IF EXISTS {diff.scan_table}")
        cur.execute(f"DROP TABLE IF EXISTS {diff.unseen_table}")
        cur.execute(f'CREATE INDEX ON {diff.table} (kind, key COLLATE "C")')
        cur.execute(f"SELECT kind, count(*) FROM {diff.table} GROUP BY kind")
        for kind, count in cur.fetchall():
            setattr(diff.counts, kind, count)
        diff.counts.state_rows = diff.counts.source_rows - diff.counts.added + diff.counts.removed
        step("index_s")
    return diff


def _diff_with_state_index(
    cur, diff: SyncDiff, index, source, step, key_unique: bool
) -> str | None:
    """The state loaded into the worker (StateIndex); each batch's unchanged rows (same
    key, same md5 as acknowledged) set aside there; the other rows (candidates) and the
    acknowledged keys no row matched (unseen) copied into the portal, where one small join
    with the state decides them: added, changed (or unchanged after all), removed."""
    import pyarrow as pa  # lazy, as in diff_plan

    scan, unseen = diff.scan_table, diff.unseen_table
    cur.execute(f'CREATE TEMPORARY TABLE {scan} (key text COLLATE "C", row_hash text)')
    with cur.copy(f"COPY {scan} (key, row_hash) FROM STDIN WITH (FORMAT csv)") as copy:
        for batch in source:
            diff.counts.source_rows += batch.num_rows
            unchanged = index.unchanged(batch.column(0), batch.column(1))
            if not unchanged.all():
                copy.write(_copy_text(batch.filter(pa.array(~unchanged)), 2))
    candidates = cur.rowcount  # the rows the index left to SQL
    step("scan_s")
    cur.execute(f'CREATE TEMPORARY TABLE {unseen} (key text COLLATE "C")')
    keys = index.unseen_keys()
    if len(keys):
        with cur.copy(f"COPY {unseen} (key) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(_copy_text(pa.RecordBatch.from_arrays([keys], names=["key"]), 1))
    cur.execute(f"ANALYZE {scan}")  # a few rows usually: probe the state by its key
    cur.execute(f"ANALYZE {unseen}")
    if candidates <= PROBED_CANDIDATES:
        # Each key looked up by the state's primary key (a lateral subquery with a LIMIT
        # is not flattened into a join): 30-40 ms for 10,000 keys, where a hash join read
        # all of a million-key state (145-250 ms) whatever the statistics, and a subquery
        # in the select list ran once per reference (200 ms).
        acked = (
            f"SELECT t.key, t.row_hash, s.row_hash AS acked FROM {scan} t "
            f"LEFT JOIN LATERAL (SELECT s.row_hash FROM {STATE} s WHERE s.sync_id = %s "
            "AND s.key = t.key LIMIT 1) s ON true"
        )
    else:
        acked = (
            f"SELECT t.key, t.row_hash, s.row_hash AS acked FROM {scan} t "
            f"LEFT JOIN {STATE} s ON s.sync_id = %s AND s.key = t.key"
        )
    cur.execute(
        f"CREATE TEMPORARY TABLE {diff.table} AS "
        "SELECT CASE WHEN acked IS NULL THEN 'added' ELSE 'changed' END AS kind, key, "
        f"row_hash FROM ({acked}) candidates WHERE acked IS NULL OR acked <> row_hash "
        f"UNION ALL SELECT 'removed', u.key, '' FROM {unseen} u "
        f"WHERE NOT EXISTS (SELECT 1 FROM {scan} t WHERE t.key = u.key)",
        [diff.sync_id],
    )
    step("join_s")
    if key_unique:
        return None
    # Statistics for the plan (a few rows, 5 ms): without them the planner guessed a
    # nested loop for the anti join below (1.3 s for 10,000 keys, not 10 ms).
    cur.execute(f"ANALYZE {diff.table}")
    # A changed key whose acknowledged record a row matched: that row is another copy.
    cur.execute(
        f"SELECT p.key FROM {diff.table} p WHERE p.kind = 'changed' "
        f"AND NOT EXISTS (SELECT 1 FROM {unseen} u WHERE u.key = p.key) LIMIT 1"
    )
    found = cur.fetchone()
    duplicate = found[0] if found else _duplicate_key(cur, scan=scan, plan=diff.table)
    step("duplicates_s")
    return duplicate


def _diff_in_sql(cur, diff: SyncDiff, source, step, key_unique: bool) -> str | None:
    """The whole scan copied into a temporary table, then one full join with the state:
    added, changed and removed keys in one pass; then, unless the source guarantees the
    key unique, the plan's keys looked for twice in the scan."""
    scan = diff.scan_table
    cur.execute(f'CREATE TEMPORARY TABLE {scan} (key text COLLATE "C", row_hash text)')
    with cur.copy(f"COPY {scan} (key, row_hash) FROM STDIN WITH (FORMAT csv)") as copy:
        for batch in source:
            diff.counts.source_rows += batch.num_rows
            copy.write(_copy_text(batch, 2))
    step("copy_s")
    # No ANALYZE (0.15 s per 1,000,000 keys): without statistics the planner sizes the
    # table by its pages, which is enough to hash the state side and scan this one.
    cur.execute(
        f"CREATE TEMPORARY TABLE {diff.table} AS "
        "SELECT CASE WHEN s.key IS NULL THEN 'added' WHEN t.key IS NULL THEN 'removed' "
        "ELSE 'changed' END AS kind, COALESCE(t.key, s.key) AS key, "
        "COALESCE(t.row_hash, '') AS row_hash "
        f"FROM {scan} t FULL JOIN (SELECT key, row_hash FROM {STATE} "
        "WHERE sync_id = %s) s ON s.key = t.key "
        "WHERE s.key IS NULL OR t.key IS NULL OR s.row_hash <> t.row_hash",
        [diff.sync_id],
    )
    step("join_s")
    if key_unique:
        return None
    duplicate = _duplicate_key(cur, scan=scan, plan=diff.table)
    step("duplicates_s")
    return duplicate


def _copy_text(batch, columns: int) -> bytes:
    """The batch's first `columns` columns (key, hash) as CSV for COPY (copy_csv), as
    pa.string() whatever text type the engine gave."""
    import pyarrow as pa  # lazy, as in diff_plan

    from sharing.serving.arrow_values import copy_csv
    from sharing.syncs.state_index import as_text

    names = ["key", "row_hash"][:columns]
    text = [as_text(batch.column(i)) for i in range(columns)]
    return copy_csv(pa.RecordBatch.from_arrays(text, names=names))


def _duplicate_key(cur, *, scan: str, plan: str) -> str | None:
    """A key of the plan that the scan holds more than once, or None."""
    # A key the source serves twice matters where a copy of it would be sent: an added
    # or changed key of the plan (a repeat of a row that is unchanged, with the very
    # values acknowledged, sends nothing and is found when one changes; a first run
    # looks at every key, key_counts). So only the plan's keys are counted in the scan:
    # one pass, not a grouping of every key.
    cur.execute(
        f"SELECT t.key FROM {scan} t JOIN (SELECT DISTINCT key FROM {plan} "
        "WHERE kind <> 'removed') p ON p.key = t.key "
        "GROUP BY t.key HAVING count(*) > 1 LIMIT 1"
    )
    found = cur.fetchone()
    return found[0] if found else None


class _Steps:
    """Seconds since the previous step, kept by name."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.last = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = round(now - self.last, 3)
        self.last = now


class ReadAhead:
    """`items`, read in a thread of its own (from construction) up to `depth` ahead, so
    that a source serves the next while the portal or a destination takes this one.
    Errors come out where the caller reads; closing (or leaving the `with` block) early
    ends the reading too."""

    def __init__(self, items: Iterator[T], depth: int) -> None:
        self.items = items
        self.waiting: queue.Queue = queue.Queue(maxsize=depth)
        self.done = object()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._produce, name="sync-read-ahead", daemon=True)
        self.thread.start()

    def _produce(self) -> None:
        try:
            for item in self.items:
                if self.stop.is_set():
                    return
                self.waiting.put(item)
            self.waiting.put(self.done)
        except BaseException as exc:  # noqa: BLE001 - raised in the reading thread
            self.waiting.put(exc)
        finally:
            close = getattr(self.items, "close", None)
            if close is not None:
                close()  # a generator's own clean-up (a source's connection), here
            connection.close()  # this thread's portal connection, if it opened one

    def __iter__(self) -> Iterator[T]:
        while (item := self.waiting.get()) is not self.done:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self.stop.set()
        while self.thread.is_alive():  # unblock a producer waiting for room, then let it end
            try:
                self.waiting.get(timeout=0.1)
            except queue.Empty:
                pass
        self.thread.join()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def read_ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """ReadAhead as a generator: reading starts at the first item asked for, and ends when
    the generator does."""
    with ReadAhead(items, depth) as reader:
        yield from reader


def _diff_in_python(*, sync_id: int, run_id: int, batches: Iterator) -> SyncDiff:
    diff = SyncDiff(sync_id=sync_id, run_id=run_id)
    source: dict[str, str] = {}
    for batch in batches:
        pairs = zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)
        for key, row_hash in pairs:
            if key in source:
                diff.counts.duplicate = key
                return diff
            source[key] = row_hash
    state = dict(SyncRecordState.objects.filter(sync_id=sync_id).values_list("key", "row_hash"))
    diff.counts.source_rows = len(source)
    diff.counts.state_rows = len(state)
    added = sorted((k, h) for k, h in source.items() if k not in state)
    changed = sorted((k, h) for k, h in source.items() if k in state and state[k] != h)
    removed = sorted((k, "") for k in state if k not in source)
    diff._rows = {"added": added, "changed": changed, "removed": removed}
    diff.counts.added, diff.counts.changed, diff.counts.removed = (
        len(added),
        len(changed),
        len(removed),
    )
    return diff
