"""Running a planned federated query: written for its engine, under its guardrails,
streamed as Arrow batches, audited once per product it read.

    query = query_start(user=..., sql=..., channel="api")       # or QueryRefused
    for batch in query_batches(query, limit=1000): ...          # Arrow RecordBatches

- One source (every product on the same PostgreSQL or DuckDB database, or the same Spark
  Connect server): the whole rewritten query runs there, written in its dialect
  (sqlglot), each product reference replaced by its governed relation.
- Otherwise (several sources, or files): an in-process DuckDB (memory-limited, spilling
  to disk, no file or network access once its inputs are attached) joins the products.
  A file port is read there directly (DuckDB pushes columns and filters into Parquet); a
  table is read from its source with only the columns the query reads and the WHERE
  conjuncts that concern it alone, streamed as Arrow.

Guardrails: the reader's rate (QUERY_RATE_LIMIT), a statement timeout cancelled on the
source (QUERY_TIMEOUT_SECONDS), PostgreSQL's estimated cost (QUERY_COST_BUDGET), a row
cap (QUERY_MAX_ROWS; the answer says it was truncated), and a limit on the queries that
run at once on one source (QUERY_SOURCE_CONCURRENCY). The cost budget is PostgreSQL's
alone: DuckDB and Spark give no comparable estimate before running (Spark's EXPLAIN COST
is a command, which the connector never sends), so a query there is held by its
timeout, its row cap and the source's concurrency only.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from sqlglot import exp

from portal.core import json_values
from products.connectors import (
    Connector,
    ConnectorError,
    SourceAccessRefused,
    connector_for_port,
    port_file_path,
)
from products.connectors.duckdb import _temp_directory
from sharing.choices import QueryStatus
from sharing.federation.refusals import QueryRefused
from sharing.federation.services.planning import (
    ENGINE_DIALECTS,
    GovernedReference,
    QueryPlan,
    query_plan,
)
from sharing.models import FederatedQuery
from sharing.serving.fingerprints import source_fingerprint
from sharing.serving.ratelimit import _redis, parse_rate, rate_limit_hit
from sharing.serving.reads import audit_read, governed_select_sql

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 50_000
CANCEL_KEY = "portal:query:cancel:{}"
ANSWER_KEY = "portal:query:answer:{}"
CANCEL_POLL_SECONDS = 0.25
# Errors of a statement that say the source is in trouble, not the SQL.
SOURCE_TROUBLE = (
    "out of memory",
    "could not write",
    "could not extend",
    "no space left",
    "conflict with recovery",
    "terminating connection",
    "too many connections",
    "canceling statement due to user request",
)
logger = logging.getLogger(__name__)


@dataclass
class RunningQuery:
    """A query accepted to run: its plan and its row in the history."""

    plan: QueryPlan
    record: FederatedQuery
    client_address: str | None = None
    rows: int = 0
    truncated: bool = False
    source_rows: dict[int, int] = field(default_factory=dict)  # reference index: rows read
    cancelled: bool = False
    cached: bool = False
    # What stops the query where it runs (a source's statement, the portal's DuckDB).
    cancellers: list[Callable[[], object]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.record.pk)

    @property
    def label(self) -> str:
        """The application_name of its sessions on PostgreSQL sources."""
        return f"portal-query-{self.record.pk}"

    def cancel(self) -> None:
        self.cancelled = True
        for canceller in list(self.cancellers):
            try:
                canceller()
            except Exception:  # noqa: BLE001 - a source gone away has nothing left to stop
                logger.warning("Cancelling query %s: a canceller failed", self.id, exc_info=True)


def query_start(
    *, user, sql: str, channel: str = "api", client_address: str | None = None
) -> RunningQuery:
    """Plan a query for `user` and record it as running. Raises QueryRefused (the
    refusal is kept in the person's history too, status 429 past their rate)."""
    rate = parse_rate(settings.QUERY_RATE_LIMIT)
    hit = rate_limit_hit(scope="query", key=str(user.pk), rate=rate)
    if not hit.allowed:
        raise QueryRefused(
            f"You started more than {rate.limit} queries in {rate.window} s: wait "
            f"{hit.retry_after} s.",
            status=429,
        )
    try:
        plan = query_plan(user=user, sql=sql)
    except QueryRefused as exc:
        FederatedQuery.objects.create(
            user=user,
            sql=sql[:100_000].replace("\x00", "\N{REPLACEMENT CHARACTER}"),  # PostgreSQL text
            channel=channel,
            status=QueryStatus.REFUSED,
            error=str(exc),
            finished_at=timezone.now(),
            duration_ms=0,
        )
        raise
    record = FederatedQuery.objects.create(
        user=user,
        sql=sql,
        channel=channel,
        engine=plan.engine,
        products=[g.reference.written for g in plan.governed],
    )
    return RunningQuery(plan=plan, record=record, client_address=client_address)


# --- writing the query for its engine -------------------------------------------------------


def _capped(tree: exp.Expression, cap: int) -> exp.Expression:
    """The query with at most `cap` rows (its own LIMIT kept when smaller)."""
    tree = tree.copy()
    if isinstance(tree, exp.Select):
        existing = tree.args.get("limit")
        value = existing.expression if isinstance(existing, exp.Limit) else None
        if existing is None:
            return tree.limit(cap)
        if isinstance(value, exp.Literal) and value.is_int:
            return tree.limit(min(int(value.this), cap))
    return exp.select("*").from_(tree.subquery("capped_result")).limit(cap)


def _postgres_name(node: exp.Expression) -> str:
    """The name PostgreSQL gives an unnamed output: a column's (also through a cast), a
    function's (`count`, `date_trunc`, a window's function), `case`, else `?column?`."""
    if node.output_name:
        return node.output_name
    text = node.sql(dialect="postgres")
    called = re.match(r"([A-Za-z_][A-Za-z_0-9]*)\s*\(", text)
    if called:
        return called.group(1).lower()
    return "case" if isinstance(node, exp.Case) else "?column?"


def postgres_output_names(tree: exp.Expression) -> exp.Expression:
    """The query with its unnamed outputs named as PostgreSQL names them: people write
    PostgreSQL's dialect, and DuckDB would call `count(*)` "count_star()"."""
    tree = tree.copy()
    first = tree
    while isinstance(first, exp.SetOperation):  # a set operation's names are its first's
        first = first.left
    if isinstance(first, exp.Select):
        first.set(
            "expressions",
            [
                node
                if isinstance(node, exp.Alias | exp.Column | exp.Star)
                else exp.alias_(node, _postgres_name(node), quoted=True)
                for node in first.expressions
            ],
        )
    return tree


def _marker_sql(reference_marker: str, dialect: str) -> str:
    return exp.to_identifier(reference_marker, quoted=True).sql(dialect=dialect)


def write_statement(
    tree: exp.Expression,
    *,
    dialect: str,
    relations: dict[str, Callable[[Callable[[], str]], tuple[str, list[Any]]]],
    placeholder: Callable[[int], str],
) -> tuple[str, list[Any]]:
    """The SQL of the validated tree for `dialect` (generated from the tree, comments
    dropped), each marker replaced by `relations[marker](next_placeholder)`'s SQL, and
    the bound parameters in the order their placeholders appear."""
    text = tree.sql(dialect=dialect, comments=False)
    pieces: list[str] = []
    params: list[Any] = []
    counter = iter(range(1, 1_000_000))
    pattern = "|".join(re.escape(_marker_sql(marker, dialect)) for marker in relations)
    position = 0
    seen: set[str] = set()
    for match in re.finditer(pattern, text):
        marker = next(m for m in relations if _marker_sql(m, dialect) == match.group(0))
        if marker in seen:  # only the validated tables carry a marker
            raise QueryRefused("The query names a product outside a FROM clause.")
        seen.add(marker)
        sql, bound = relations[marker](lambda: placeholder(next(counter)))
        pieces.append(text[position : match.start()])
        pieces.append(sql)
        params.extend(bound)
        position = match.end()
    pieces.append(text[position:])
    if seen != set(relations):
        raise QueryRefused("The query cannot be written for its source.")
    return "".join(pieces), params


def _governed_relation(
    item: GovernedReference, *, connector, relation: str | None = None, pushed: bool = False
):
    """A relations[] entry: the reference's governed subquery on `connector`'s engine."""

    def relation_sql(placeholder: Callable[[], str]) -> tuple[str, list[Any]]:
        dialect = ENGINE_DIALECTS.get(connector.dialect, connector.dialect)
        sql, params = governed_select_sql(
            item.plan,
            quote=connector.quote_ident,
            dialect=connector.dialect,
            relation=relation or connector.relation_sql(),
            placeholder=placeholder,
            columns=_read_columns(item) if pushed else None,
            predicates=item.predicates_sql(dialect) if pushed else (),
            fenced=True,
        )
        return f"({sql})", params

    return relation_sql


def _read_columns(item: GovernedReference) -> list[str]:
    """The plan's columns the query reads, in the port's order."""
    return [name for name in item.plan.columns if name in item.columns]


# --- guardrails -----------------------------------------------------------------------------


@contextmanager
def _source_slot(location: tuple):
    """One of QUERY_SOURCE_CONCURRENCY slots of the source (Redis, across processes), or
    a 503 naming the wait. Without Redis (a one-process `make run`) there is no limit."""
    url = getattr(settings, "REDIS_URL", "")
    limit = settings.QUERY_SOURCE_CONCURRENCY
    if not url or limit <= 0:
        yield
        return
    client = _redis(url)
    key = f"portal:query:running:{location[0]}:{location[1]}"
    count = client.incr(key)
    client.expire(key, int(settings.QUERY_TIMEOUT_SECONDS) + 60)  # a crashed run frees it
    try:
        if count > limit:
            raise QueryRefused(
                f"{limit} queries are already running on this source: try again in a moment.",
                status=503,
            )
        yield
    finally:
        client.decr(key)


def _explain_cost(connector, sql: str, params: list[Any]) -> tuple[float, float]:
    """PostgreSQL's estimate of a statement: (total cost, rows)."""
    return connector.plan_estimate(sql, params, timeout_seconds=settings.QUERY_TIMEOUT_SECONDS)


def _cost_check(connector, sql: str, params: list[Any]) -> None:
    cost, rows = _explain_cost(connector, sql, params)
    if cost > settings.QUERY_COST_BUDGET:
        raise QueryRefused(
            f"This query would cost the source about {cost:,.0f} (PostgreSQL's estimate; the "
            f"budget is {settings.QUERY_COST_BUDGET:,.0f}), reading about {rows:,.0f} rows: "
            "filter it further, or read the products' data with a scheduled export.",
            status=400,
        )


# --- running ---------------------------------------------------------------------------------


def _single_source(running: RunningQuery, tree: exp.Expression) -> Iterator[pa.RecordBatch]:
    plan = running.plan
    first = plan.governed[0]
    with connector_for_port(first.plan.port) as connector, _source_slot(first.location):
        sql, params = single_source_statement(plan, tree, connector)
        if plan.engine == "postgresql":
            _cost_check(connector, sql, params)
        yield from _pull(running, first, connector, sql, params)


def single_source_statement(
    plan: QueryPlan, tree: exp.Expression, connector
) -> tuple[str, list[Any]]:
    """The whole query for its one source (`connector`'s): each product reference
    replaced by its governed relation there."""
    relations = {}
    for item in plan.governed:
        with connector_for_port(item.plan.port) as own:  # opens nothing: its name only
            relation = own.relation_sql()
        connector.relation_refresh(relation)  # Spark: read as it is now, not as first seen
        relations[item.reference.marker] = _governed_relation(
            item, connector=connector, relation=relation
        )
    return write_statement(
        tree,
        dialect=ENGINE_DIALECTS[plan.engine],
        relations=relations,
        placeholder=connector.arrow_placeholder,
    )


def _federated(running: RunningQuery, tree: exp.Expression) -> Iterator[pa.RecordBatch]:
    # Lazily: DuckDB and pyarrow only in a process that runs a query.
    import duckdb
    import pyarrow as pa

    from sharing.serving.arrow_values import arrow_decimals

    plan = running.plan
    conn = _duckdb_instance()
    try:
        files: list[str] = []
        relations = {}
        # The inputs' names: unguessable, so that no name a query may write (a WITH query
        # is the only unqualified relation it may name) can meet one of them.
        salt = uuid.uuid4().hex[:12]
        inputs = {g.reference.index: f"input_{g.reference.index}_{salt}" for g in plan.governed}
        quote = Connector.quote_ident
        for item in plan.governed:
            port = item.plan.port
            name = inputs[item.reference.index]
            if item.location[0] == "file":
                path = str(port_file_path(port.file_path))
                if port.file_format == "csv":
                    conn.read_csv(path).create_view(name)
                else:
                    conn.read_parquet(path).create_view(name)
                files.append(path)
                relations[item.reference.marker] = _duckdb_relation(item, quote(name))
        # Inputs attached: the query itself reads nothing else.
        conn.execute("SET allowed_paths = ?", [files])
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
        for item in plan.governed:
            if item.location[0] == "file":
                continue
            name = inputs[item.reference.index]
            with connector_for_port(item.plan.port) as source, _source_slot(item.location):
                sql, params = pushed_statement(item, source)
                if source.dialect == "postgresql":
                    _cost_check(source, sql, params)
                batches = _pull(running, item, source, sql, params)
                first = next(batches, None)
                if first is None:
                    empty = _empty_select(item, quote)
                    conn.execute(f"CREATE TABLE {quote(name)} AS {empty}")
                    running.source_rows[item.reference.index] = 0
                else:
                    first = arrow_decimals(first)
                    rest = (arrow_decimals(batch) for batch in batches)
                    reader = pa.RecordBatchReader.from_batches(
                        first.schema, itertools.chain([first], rest)
                    )
                    conn.register("arrow_input", reader)
                    conn.execute(f"CREATE TABLE {quote(name)} AS SELECT * FROM arrow_input")
                    conn.unregister("arrow_input")
                    # fetchall: a result left unread would block the connection.
                    running.source_rows[item.reference.index] = conn.execute(
                        f"SELECT count(*) FROM {quote(name)}"
                    ).fetchall()[0][0]
            relations[item.reference.marker] = _materialised(quote(name))
        sql, params = write_statement(
            tree, dialect="duckdb", relations=relations, placeholder=lambda i: "?"
        )
        cursor = conn.cursor()
        timer = threading.Timer(settings.QUERY_TIMEOUT_SECONDS, cursor.interrupt)
        timer.start()
        running.cancellers.append(cursor.interrupt)
        try:
            reader = cursor.sql(sql, params=params).to_arrow_reader(BATCH_ROWS)
            yield from reader
        except (duckdb.Error, pa.ArrowException) as exc:
            # An interrupt comes as duckdb's InterruptException, or through pyarrow while
            # the reader streams.
            interrupted = isinstance(exc, duckdb.InterruptException) or (
                "INTERRUPT" in str(exc).upper()
            )
            if running.cancelled:
                raise ConnectorError("The query was cancelled.") from exc
            if interrupted:
                raise ConnectorError("The query was cancelled after its time limit.") from exc
            raise ConnectorError(f"The query failed: {str(exc).splitlines()[0]}") from exc
        finally:
            timer.cancel()
    finally:
        # Closing costs a few milliseconds the answer need not wait for. Not a daemon
        # thread: the interpreter waits for it at exit (DuckDB aborts the process when
        # native work is cut off by the interpreter's end).
        threading.Thread(target=conn.close).start()


# A new DuckDB instance costs 12-20 ms, a third of a selective federated query: each
# process keeps one spare, made in the background after the previous one was taken, so a
# query finds its own fresh instance ready. Each instance serves one query (its inputs'
# files allowed, its configuration locked for it) and is closed after it.
_spare_lock = threading.Lock()
_spare: tuple[int, Any] | None = None  # (the process that made it, the instance)


def _fresh_duckdb():
    import duckdb  # lazily: see _federated

    conn = duckdb.connect(":memory:")
    conn.execute("SET memory_limit = ?", [settings.QUERY_DUCKDB_MEMORY_LIMIT])
    conn.execute("SET temp_directory = ?", [str(_temp_directory())])
    return conn


def _prepare_spare() -> None:
    global _spare
    conn = _fresh_duckdb()
    with _spare_lock:
        if _spare is None:
            _spare = (os.getpid(), conn)
            return
    conn.close()


def _duckdb_instance():
    """A fresh, unlocked DuckDB instance for one query (the spare when there is one)."""
    global _spare
    with _spare_lock:
        taken, _spare = _spare, None
    # A spare made before a fork belongs to the parent: never shared with a child.
    conn = taken[1] if taken is not None and taken[0] == os.getpid() else _fresh_duckdb()
    threading.Thread(target=_prepare_spare).start()  # not a daemon: see _federated
    return conn


@atexit.register
def _spare_close() -> None:
    global _spare
    with _spare_lock:
        taken, _spare = _spare, None
    if taken is not None and taken[0] == os.getpid():
        taken[1].close()


def pushed_statement(item: GovernedReference, source) -> tuple[str, list[Any]]:
    """What a federated query reads of one product on its own source: the governed
    relation with only the columns the query reads and its own WHERE conjuncts."""
    counter = iter(range(1, 1_000_000))
    return governed_select_sql(
        item.plan,
        quote=source.quote_ident,
        dialect=source.dialect,
        relation=source.relation_sql(),
        placeholder=lambda: source.arrow_placeholder(next(counter)),
        columns=_read_columns(item),
        predicates=item.predicates_sql(ENGINE_DIALECTS[source.dialect]),
        fenced=True,
    )


def _pull(running: RunningQuery, item: GovernedReference, connector, sql: str, params):
    """The statement's Arrow batches from `connector` (the item's source), cancellable:
    a PostgreSQL session carries the query's label (cancelled by it from another
    connection), a Spark statement is tagged with it (interrupted by the tag on the
    process's session), a DuckDB source's cursor is interrupted."""
    if connector.dialect == "spark":
        running.cancellers.append(lambda: connector.sessions_cancel(running.label))
        yield from connector.arrow_batches(
            sql,
            params,
            batch_rows=BATCH_ROWS,
            timeout_seconds=settings.QUERY_TIMEOUT_SECONDS,
            session_label=running.label,
        )
        return
    if connector.dialect == "postgresql":
        canceller_source = connector_for_port(item.plan.port)
        running.cancellers.append(lambda: canceller_source.sessions_cancel(running.label))
        try:
            yield from connector.arrow_batches(
                sql,
                params,
                batch_rows=BATCH_ROWS,
                timeout_seconds=settings.QUERY_TIMEOUT_SECONDS,
                session_label=running.label,
            )
        finally:
            canceller_source.close()
        return
    running.cancellers.append(connector.interrupt)
    yield from connector.arrow_batches(
        sql, params, batch_rows=BATCH_ROWS, timeout_seconds=settings.QUERY_TIMEOUT_SECONDS
    )


def _empty_select(item: GovernedReference, quote) -> str:
    names = _read_columns(item) or ["__row__"]
    return "SELECT " + ", ".join(f"NULL AS {quote(n)}" for n in names) + " LIMIT 0"


def _duckdb_relation(item: GovernedReference, relation: str):
    def relation_sql(placeholder: Callable[[], str]) -> tuple[str, list[Any]]:
        sql, params = governed_select_sql(
            item.plan,
            quote=Connector.quote_ident,
            dialect="duckdb",
            relation=relation,
            placeholder=placeholder,
            fenced=True,
        )
        return f"({sql})", params

    return relation_sql


def _materialised(relation: str):
    def relation_sql(placeholder: Callable[[], str]) -> tuple[str, list[Any]]:
        return relation, []

    return relation_sql


def query_batches(
    running: RunningQuery, *, limit: int | None = None, fmt: str = "arrow"
) -> Iterator[pa.RecordBatch]:
    """The query's rows as Arrow batches: at most `limit` (QUERY_MAX_ROWS at most), with
    `running.truncated` set when there were more. Records the outcome and writes one
    audit event per product when the stream ends (complete, failed or abandoned)."""
    cap = settings.QUERY_MAX_ROWS if limit is None else max(0, min(limit, settings.QUERY_MAX_ROWS))
    plan = running.plan
    tree = plan.parsed.tree
    if plan.engine != "postgresql":
        tree = postgres_output_names(tree)
    tree = _capped(tree, cap + 1)
    started = time.monotonic()
    error = ""
    status = QueryStatus.FAILED
    stop = threading.Event()
    threading.Thread(target=_watch_cancel, args=(running, stop), daemon=True).start()
    try:
        batches = (
            _single_source(running, tree)
            if plan.engine != "federated"
            else _federated(running, tree)
        )
        for batch in batches:
            room = cap - running.rows
            if batch.num_rows > room:
                running.truncated = True
                if room > 0:
                    running.rows += room
                    yield batch.slice(0, room)
                break
            running.rows += batch.num_rows
            yield batch
        status = QueryStatus.SUCCEEDED
    except QueryRefused as exc:
        error = str(exc)
        status = QueryStatus.REFUSED
        raise
    except ConnectorError as exc:
        if running.cancelled:
            status = QueryStatus.CANCELLED
            raise ConnectorError("The query was cancelled.") from exc
        error = str(exc)
        raise
    except GeneratorExit:
        status = QueryStatus.CANCELLED
        running.cancel()
        raise
    finally:
        stop.set()
        _finish(running, status=status, error=error, fmt=fmt, started=started)


def _watch_cancel(running: RunningQuery, stop: threading.Event) -> None:
    """Until the query ends: cancel it where it runs once someone asks (query_cancel)."""
    key = CANCEL_KEY.format(running.id)
    while not stop.wait(CANCEL_POLL_SECONDS):
        if cache.get(key):
            running.cancel()
            return


def query_cancel(*, user, query_id) -> FederatedQuery:
    """Ask a running query of `user` to stop; the process running it cancels it on its
    sources within a moment. Raises QueryRefused (404 not theirs, 409 not running)."""
    record = FederatedQuery.objects.filter(pk=query_id, user=user).first()
    if record is None:
        raise QueryRefused("No such query of yours.", status=404)
    if record.status != QueryStatus.RUNNING:
        raise QueryRefused(f"This query is not running: it {record.status}.", status=409)
    cache.set(CANCEL_KEY.format(record.pk), "1", timeout=int(settings.QUERY_TIMEOUT_SECONDS) + 60)
    return record


def _finish(running: RunningQuery, *, status: str, error: str, fmt: str, started: float) -> None:
    record = running.record
    record.status = status
    record.error = error[:2000]
    record.rows = running.rows
    record.truncated = running.truncated
    record.finished_at = timezone.now()
    record.duration_ms = int((time.monotonic() - started) * 1000)
    record.save(
        update_fields=["status", "error", "rows", "truncated", "finished_at", "duration_ms"]
    )
    seen: set[int] = set()
    for item in running.plan.governed:
        if item.product.pk in seen:
            continue
        seen.add(item.product.pk)
        read = [g for g in running.plan.governed if g.product.pk == item.product.pk]
        extra: dict[str, Any] = {"query_id": running.id, "engine": running.plan.engine}
        if running.cached:
            extra["cached"] = True
        source_rows = [
            running.source_rows[g.reference.index]
            for g in read
            if g.reference.index in running.source_rows
        ]
        if source_rows:
            extra["source_rows"] = sum(source_rows)
        audit_read(
            item.plan,
            rows=running.rows,
            nbytes=None,
            client_address=running.client_address,
            fmt=fmt,
            error=error,
            extra=extra,
        )


def query_error_message(exc: ConnectorError) -> str:
    """The failure in words: the database's own sentence, without the driver's prefixes
    (ADBC's "INVALID_DATA: [libpq] Failed to execute ...: ERROR:  ...")."""
    text = str(exc)
    if query_error_status(exc) == 504:
        return (
            f"The query ran past its time limit ({settings.QUERY_TIMEOUT_SECONDS:g} s) and was "
            "cancelled where it ran: narrow it (a filter, fewer rows), or aggregate more."
        )
    match = re.search(r"ERROR:\s+(.*)", text)
    if match is None:
        return text
    where = re.match(r"(Query failed on .*?): ", text)
    return f"{where.group(1) if where else 'The query failed'}: {match.group(1).strip()}"


def _spark_sqlstate(cause) -> str:
    """The SQLSTATE of a Spark error (pyspark's exceptions say it by a method), or ""."""
    getter = getattr(cause, "getSqlState", None)
    try:
        return str(getter() or "") if callable(getter) else ""
    except Exception:  # noqa: BLE001 - an exception that cannot say
        return ""


def query_error_status(exc: ConnectorError) -> int:
    """The HTTP status of a query that failed where it ran: 504 past its time limit, 400
    when the SQL itself is at fault (a type mismatch, a failed cast, a division by zero:
    SQLSTATE classes 22 and 42, DuckDB's binder, conversion and invalid-input errors),
    403 when a source refused the portal's account (SourceAccessRefused), 502 when the
    source could not be reached or read."""
    if isinstance(exc, SourceAccessRefused):  # the source refused the portal's account
        return 403
    cause = exc.__cause__
    sqlstate = str(getattr(cause, "sqlstate", "") or _spark_sqlstate(cause))
    if sqlstate == "57014" or "time limit" in str(exc) or "statement timeout" in str(exc):
        return 504
    if sqlstate[:2] in ("22", "42"):
        return 400
    text = str(exc)
    if "ERROR:" in text and not any(word in text for word in SOURCE_TROUBLE):
        # A statement the server read and rejected, met while the answer streamed
        # (ADBC then gives no SQLSTATE): the SQL is at fault (a failed cast, a division
        # by zero), not the source.
        return 400
    kind = type(cause).__name__ if cause is not None else ""
    if kind in (
        "BinderException",
        "ConversionException",
        "InvalidInputException",
        "OutOfRangeException",
        "ParserException",
        "CatalogException",
        "NotImplementedException",
    ):
        return 400
    if "failed:" in str(exc) and cause is None:
        return 400
    return 502


def _answer_key(running: RunningQuery, limit: int | None) -> str | None:
    """The cache key of the answer: the query as validated, each reference's governed
    shape (port, columns, masks, row clauses: what the rewrite puts in its place) and its
    data's fingerprint at the source; None when one has no cheap fingerprint (a view)."""
    if settings.QUERY_CACHE_SECONDS <= 0:
        return None
    plan = running.plan
    parts: list = [plan.engine, plan.parsed.tree.sql(dialect="postgres"), limit]
    for item in plan.governed:
        fingerprint = source_fingerprint(item.plan.port, read_views=False)
        if not fingerprint:
            return None
        parts.append(
            [
                item.reference.marker,
                item.plan.port.pk,
                item.plan.columns,
                sorted(item.plan.masked),
                [clause.as_dict() for clause in item.plan.clauses],
                fingerprint,
            ]
        )
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
    return ANSWER_KEY.format(digest)


def query_rows(running: RunningQuery, *, limit: int | None = None) -> dict:
    """The whole answer as JSON values: `{"columns", "rows", "truncated", "query_id",
    "engine", "cached"}`. The same query over the same data under the same access is
    answered from the cache for QUERY_CACHE_SECONDS (and audited all the same)."""
    # Lazy: pyarrow, only where a query is answered.
    from sharing.serving.arrow_values import python_columns

    try:
        key = _answer_key(running, limit)
    except ConnectorError:
        key = None  # the run itself will say what is wrong with the source
    cached = cache.get(key) if key else None
    if cached is not None:
        running.cached = True
        running.rows, running.truncated = len(cached["rows"]), cached["truncated"]
        _finish(
            running, status=QueryStatus.SUCCEEDED, error="", fmt="json", started=time.monotonic()
        )
        return {**cached, "query_id": running.id, "cached": True}
    columns: list[str] = []
    rows: list[list] = []
    for batch in query_batches(running, limit=limit, fmt="json"):
        columns = batch.schema.names
        rows.extend(list(values) for values in zip(*python_columns(batch), strict=True))
    answer = {
        "columns": columns,
        "rows": [[json_values.json_value(value) for value in row] for row in rows],
        "truncated": running.truncated,
        "engine": running.plan.engine,
    }
    if key:
        cache.set(key, answer, timeout=settings.QUERY_CACHE_SECONDS)
    return {**answer, "query_id": running.id, "cached": False}


def statements_for_sources(plan: QueryPlan) -> list[dict]:
    """What runs where, as EXPLAIN shows it: per source, the SQL with its bound values
    (the reader's own grant's) and the products it reads."""
    tree = plan.parsed.tree
    out: list[dict] = []
    if plan.engine != "federated":
        first = plan.governed[0]
        with connector_for_port(first.plan.port) as connector:
            sql, params = single_source_statement(plan, tree, connector)
            estimate = (
                _explain_cost(connector, sql, params) if plan.engine == "postgresql" else None
            )
            out.append(_statement_entry(first, plan.governed, sql, params, estimate))
        return out
    for item in plan.governed:
        if item.location[0] == "file":
            continue
        with connector_for_port(item.plan.port) as source:
            sql, params = pushed_statement(item, source)
            estimate = (
                _explain_cost(source, sql, params) if source.dialect == "postgresql" else None
            )
            out.append(_statement_entry(item, [item], sql, params, estimate))
    return out


def _statement_entry(first: GovernedReference, items, sql: str, params, estimate) -> dict:
    port = first.plan.port
    where = port.source.name if port.source_id else f"file {port.file_path}"
    return {
        "source": where,
        "engine": first.location[0],
        "products": [item.reference.written for item in items],
        "sql": sql,
        "parameters": [json_values.data_value(value) for value in params],
        "estimated_cost": estimate[0] if estimate else None,
        "estimated_rows": estimate[1] if estimate else None,
    }
