"""Apache Spark through Spark Connect: tables of a Spark cluster, of Databricks, or of the
local server tests and `make run` start (products/connectors/spark_server.py).

A source is a Spark Connect endpoint, `sc://host:port` (15002 by default), with a bearer
token read from the environment variable the source names (and then TLS, as Spark
requires of a token). A port names `schema.table` or `catalog.schema.table` (its
schema_name holding `schema` or `catalog.schema`; blank: Spark's `default`).

Each process keeps one Spark Connect session per endpoint (`_session`), shared by its
threads (the client is thread-safe; the tags that mark a statement for cancelling are
per thread), renewed when the server forgets it (a restart, an idle timeout), released
when the process exits, and never inherited by a forked child. Every session runs in UTC
and cannot query a file by its path (FROM parquet.`/a/path`): ports read catalog tables.

What a statement may be: the connector runs one read-only query (SELECT, WITH ... SELECT,
VALUES, set operations), checked with sqlglot before it is sent: Spark has no read-only
session to fall back on, and `spark.sql()` runs a command (INSERT, DROP, SET...) as soon
as it is given. Register sources with a token whose principal may only read, all the same.

Timeouts interrupt the statement on the server: each statement carries a tag of its own
(`spark.addTag`), and a timer calls `spark.interruptTag` when its time is up.

Arrow: Spark Connect sends a result as Arrow batches (at most ~4 MB each, the server's
`spark.connect.grpc.arrow.maxBatchSize`) on one gRPC stream, and `arrow_batches` hands
them on as they arrive, re-chunked to `batch_rows`: the portal holds one server batch at
a time. The public client only offers the whole result (`DataFrame.toArrow()`) or rows
(`toLocalIterator()`); the stream is the client's own iterator under toLocalIterator
(`SparkConnectClient.to_table_as_iterator`), pinned with the client's minor version in
pyproject.toml. The server computes the result at its own pace, each partition whole in
the Spark driver's memory on its way out: the portal's memory stays flat whatever the
result's size, the driver's grows with the partitions (a local driver of 640m fails a
3-million-row read that 1g serves in ~4 s).

Imported lazily: pyspark (with pandas, pyarrow and gRPC) is loaded by the first Spark
statement of a process, never by loading the URLs.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from products.connectors.base import (
    ColumnInfo,
    Connector,
    ConnectorError,
    RelationMissing,
    SourceAccessRefused,
)

if TYPE_CHECKING:
    from pyspark.sql.connect.session import SparkSession

logger = logging.getLogger(__name__)

DEFAULT_PORT = 15002
DEFAULT_SCHEMA = "default"
USER_AGENT = "data-product-portal"  # how the portal's sessions show on the server
STATEMENT_TIMEOUT_SECONDS = 300  # fetch(): checks, metrics, samples on a cluster
SERVING_TIMEOUT_SECONDS = 15 * 60  # arrow_batches(): downloads of large tables
LIST_LIMIT = 1000  # relations() and schemas(), for people choosing one
# An unreachable server is retried this many times, ~2 s in all (the client's default is
# ~10 minutes, meant for a cluster that is starting), so pages and tasks fail fast.
CONNECT_RETRIES = 3
SESSION_SETTINGS = {"spark.sql.session.timeZone": "UTC"}
# Best effort (a managed service may refuse to change it): queries cannot read a file by
# its path. Ports' locations are refused when they would (catalog/services/ports.py).
# Nor substitute `${name}`, `${env:NAME}` or `${system:x}` in a statement's text (even in
# its strings) with the server's settings and environment: read_only_check refuses `${`
# as well, for a server that keeps substitution on.
SESSION_HARDENING = {"spark.sql.runSQLOnFiles": "false", "spark.sql.variable.substitute": "false"}
# Spark's conditions (error classes) and SQLSTATEs for "the relation, its schema or
# catalog, or a column is not there", as opposed to an outage or a refusal.
MISSING_CONDITIONS = (
    "TABLE_OR_VIEW_NOT_FOUND",
    "SCHEMA_NOT_FOUND",
    "CATALOG_NOT_FOUND",
    "NO_SUCH_CATALOG_EXCEPTION",
    "UNRESOLVED_COLUMN",
    "FIELD_NOT_FOUND",
    "REQUIRES_SINGLE_PART_NAMESPACE",  # `a.b.c` where `a` is no catalog
)
MISSING_SQLSTATES = {"42P01", "42704", "42703", "42P08"}
PERMISSION_CONDITIONS = ("INSUFFICIENT_PERMISSIONS", "PERMISSION_DENIED", "UNAUTHORIZED")
PERMISSION_SQLSTATES = {"42501", "28000"}
# The server no longer knows the session (restarted, or idle past its timeout): open a
# new one and try the statement again, once.
SESSION_GONE_CONDITIONS = (
    "INVALID_HANDLE.SESSION_NOT_FOUND",
    "INVALID_HANDLE.SESSION_CLOSED",
    "INVALID_HANDLE.SESSION_CHANGED",
    "NO_ACTIVE_SESSION",  # the client closed itself on one of those
)
CANCELLED_CONDITION = "OPERATION_CANCELED"
GRPC_RECONNECT_OPTIONS = {
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.min_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 2000,
}
# A host name or an IP address: nothing that would add to the URL (`/`, `;`, `@`, `:port`).
HOST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$")
# A Databricks cluster id (0123-456789-abcdefgh), sent as the gRPC header CLUSTER_HEADER:
# nothing that could end the value or add another parameter (`;`, `=`, `/`, spaces).
CLUSTER_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}\Z")  # \Z: not even a final newline
CLUSTER_HEADER = "x-databricks-cluster-id"
MAX_LIMIT = 2**31 - 1  # Spark's LIMIT is an INT


@dataclass(frozen=True)
class SparkEndpoint:
    """Where a Spark Connect server listens and how to sign in. The token stays in
    memory: it is never part of `url` (what messages show) nor of a repr. `cluster_id`
    (Databricks: the cluster to run on) goes in a header of every call, not in `url`;
    endpoints that differ by it are different keys of the process's sessions."""

    host: str
    port: int = DEFAULT_PORT
    token: str | None = field(default=None, repr=False)
    user_id: str = ""
    cluster_id: str = ""

    @property
    def use_ssl(self) -> bool:
        return self.token is not None  # Spark sends a token over TLS only

    @property
    def url(self) -> str:
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"sc://{host}:{self.port}" + ("/;use_ssl=true" if self.use_ssl else "")


def spark_endpoint(source) -> SparkEndpoint:
    """The endpoint of a DataSource of kind spark, its token read from the environment
    variable it names. Raises ConnectorError."""
    host = (source.host or "").strip()
    if not host or not HOST_NAME.match(host):
        raise ConnectorError(
            f"Data source {source.name!r} has no valid Spark Connect host.",
            detail=f"Host {host!r} of data source {source.name!r} is not a host name.",
        )
    token = None
    if source.password_env:
        token = os.environ.get(source.password_env)
        if token is None:
            raise ConnectorError(
                f"The environment variable {source.password_env} named by data source "
                f"{source.name!r} is not set on this host."
            )
    cluster_id = source.cluster_id or ""
    if cluster_id and not CLUSTER_ID.match(cluster_id):
        raise ConnectorError(
            f"Data source {source.name!r} has no valid Databricks cluster id.",
            detail=f"Cluster id {cluster_id!r} of data source {source.name!r} is not a "
            "cluster id (letters, digits, - and _).",
        )
    return SparkEndpoint(
        host=host,
        port=int(source.port or DEFAULT_PORT),
        token=token,
        user_id=source.username or USER_AGENT,
        cluster_id=cluster_id,
    )


class SparkConnector(Connector):
    """A port's table on a Spark Connect server (or, with `table_name` blank, the
    source itself: its schemas and tables)."""

    dialect = "spark"
    paramstyle = "?"  # Spark SQL's positional parameter markers, bound by the server

    @staticmethod
    def quote_ident(name: str) -> str:
        """Spark quotes identifiers in backticks, a backtick in a name doubled."""
        if "\x00" in name:
            raise ValueError("identifier contains a NUL byte")
        return "`" + name.replace("`", "``") + "`"

    def __init__(
        self,
        *,
        endpoint: SparkEndpoint | None = None,
        source=None,
        schema_name: str = "",
        table_name: str = "",
        label: str = "",
    ) -> None:
        if endpoint is None and source is None:
            raise ValueError("SparkConnector needs a source or an endpoint")
        self.source = source
        self._endpoint = endpoint
        self.schema_name = schema_name or DEFAULT_SCHEMA
        self.table_name = table_name
        self.label = label or (source.name if source is not None else endpoint.url)
        self._tags: set[str] = set()  # statements running now, for interrupt()
        self._tags_lock = threading.Lock()
        self._refreshed: set[str] = set()  # relations refreshed by this connector

    # --- naming -----------------------------------------------------------------------

    @property
    def endpoint(self) -> SparkEndpoint:
        if self._endpoint is None:
            self._endpoint = spark_endpoint(self.source)
        return self._endpoint

    def namespace_sql(self, schema_name: str | None = None) -> str:
        """`schema` or `catalog.schema`, each part quoted."""
        parts = (schema_name or self.schema_name).split(".")
        return ".".join(self.quote_ident(part) for part in parts)

    def relation_sql(self) -> str:
        return f"{self.namespace_sql()}.{self.quote_ident(self.table_name)}"

    # --- metadata ---------------------------------------------------------------------

    def describe(self) -> list[ColumnInfo]:
        """The table's columns: Spark's type names (`bigint`, `string`, `decimal(10,2)`,
        `date`, `timestamp_ntz`, `array<int>`...), except that a TIMESTAMP column (an
        instant, read in the session's UTC) is `timestamp_ltz`, so that the portal's types
        read it as a timestamp with a time zone. File-based tables report every column
        nullable, whatever their DDL said: Spark does not enforce NOT NULL on them."""
        for attempt in (1, 2):
            spark = self._spark()
            try:
                self._table_refresh(spark)
                schema = spark.table(self.relation_sql()).schema  # analysed, not run
                break
            except Exception as exc:
                if attempt == 1 and _session_gone(exc):
                    _session_forget(self.endpoint, spark)
                    continue
                raise self._error(exc) from exc
        return [
            ColumnInfo(
                name=column.name,
                data_type=_type_name(column.dataType),
                nullable=bool(column.nullable),
                position=position,
            )
            for position, column in enumerate(schema.fields)
        ]

    def relations(self, schema_name: str) -> list[str]:
        """The tables and views of a schema (`schema` or `catalog.schema`), by name;
        temporary views left out."""
        _names, rows = self._run(
            f"SHOW TABLES IN {self.namespace_sql(schema_name)}", (), read_only_checked=True
        )
        # (namespace, tableName, isTemporary) on Spark and Databricks alike
        return sorted(row[1] for row in rows if not row[2])[:LIST_LIMIT]

    def schemas(self) -> list[str]:
        """The schemas of the session's current catalog. A port of another catalog names
        it (`catalog.schema`), and its allowance does too."""
        _names, rows = self._run("SHOW SCHEMAS", (), read_only_checked=True)
        return sorted(row[0] for row in rows)[:LIST_LIMIT]

    # --- statements -------------------------------------------------------------------

    def fetch(
        self, sql: str, params: Sequence[Any] = (), *, timeout_seconds: float | None = None
    ) -> list[tuple]:
        return self._run(sql, params, timeout_seconds=timeout_seconds)[1]

    def fetch_with_names(
        self, sql: str, params: Sequence[Any] = ()
    ) -> tuple[list[str], list[tuple]]:
        return self._run(sql, params)

    def _run(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        timeout_seconds: float | None = None,
        read_only_checked: bool = False,
    ) -> tuple[list[str], list[tuple]]:
        """The whole result as Python values: NULL as None, NaN as float('nan'), decimals
        as Decimal, TIMESTAMP as an aware UTC datetime, TIMESTAMP_NTZ as a naive one."""
        import pyarrow as pa  # loaded with pyspark already

        schema, tables = None, []
        for item in self._results(
            sql,
            params,
            timeout_seconds=timeout_seconds or STATEMENT_TIMEOUT_SECONDS,
            read_only_checked=read_only_checked,
        ):
            if isinstance(item, pa.Table):
                tables.append(item)
            else:
                schema = item
        names = list(schema.names) if schema is not None else []
        rows: list[tuple] = []
        for table in tables:
            columns = [column.to_pylist() for column in table.columns]
            rows.extend(zip(*columns, strict=True))
        return names, rows

    def arrow_batches(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        batch_rows: int,
        timeout_seconds: float | None = None,
        session_label: str | None = None,
    ) -> Iterator[Any]:
        """The result's Arrow batches as the server sends them, each cut to at most
        `batch_rows` rows; an empty result gives one empty batch with the columns.
        `session_label`: a tag the statement also carries, by which `sessions_cancel`
        stops it from anywhere (a federated query's id)."""
        import pyarrow as pa  # loaded with pyspark already

        sent = False
        schema = None
        for item in self._results(
            sql,
            params,
            timeout_seconds=timeout_seconds or SERVING_TIMEOUT_SECONDS,
            extra_tag=session_label,
        ):
            if not isinstance(item, pa.Table):
                schema = item
                continue
            for batch in item.to_batches(max_chunksize=batch_rows):
                if batch.num_rows:
                    sent = True
                    yield batch
        if not sent and schema is not None:
            yield _empty_batch(schema)

    def _results(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        timeout_seconds: float,
        read_only_checked: bool = False,
        extra_tag: str | None = None,
    ) -> Iterator[Any]:
        """The statement's result from the server: its Spark schema (StructType) first,
        then pyarrow Tables of one record batch each, as they arrive. The statement is
        interrupted on the server after `timeout_seconds`, or when the caller stops
        reading before the end."""
        if not read_only_checked:
            read_only_check(sql)
        bound = [_bindable(value) for value in params]
        tag = f"portal-{uuid.uuid4().hex}"
        tags = [tag, extra_tag] if extra_tag else [tag]
        for attempt in (1, 2):
            spark = self._spark()
            timed_out = threading.Event()

            def interrupt(spark=spark, timed_out=timed_out) -> None:
                timed_out.set()
                _interrupt(spark, tag)

            timer = threading.Timer(timeout_seconds, interrupt)
            timer.daemon = True
            with self._tags_lock:
                self._tags.add(tag)
            started = finished = False
            try:
                timer.start()
                try:
                    self._table_refresh(spark)
                    stream, first = self._start(spark, sql, bound, tags)
                except Exception as exc:
                    if attempt == 1 and _session_gone(exc) and not timed_out.is_set():
                        _session_forget(self.endpoint, spark)
                        continue
                    raise
                started = True
                if first is not None:
                    yield first
                yield from stream
                finished = True
                return
            except ConnectorError:
                raise
            except Exception as exc:
                if timed_out.is_set() or _condition(exc) == CANCELLED_CONDITION:
                    raise self._cancelled(exc, timed_out=timed_out.is_set()) from exc
                if _grpc_status(exc) == "UNAVAILABLE":
                    _session_forget(self.endpoint, spark)  # the next statement, a new channel
                raise self._error(exc) from exc
            finally:
                timer.cancel()
                with self._tags_lock:
                    self._tags.discard(tag)
                if started and not finished and not timed_out.is_set():
                    # The reader stopped early (a client went away, an error downstream):
                    # the server need not finish computing what nobody reads.
                    _interrupt(spark, tag)

    def _start(self, spark: SparkSession, sql: str, bound: list, tags: list[str]):
        """Send the statement, tagged, and wait for its first answer (the tags mark
        only the operations this thread starts while they are set, so they are taken
        off again before anything is handed to the caller)."""
        for tag in tags:
            spark.addTag(tag)
        try:
            frame = spark.sql(sql, args=bound or None)
            # The client's streaming read, under DataFrame.toLocalIterator (see the
            # module's docstring): the plan and its observations as toLocalIterator
            # passes them.
            stream = spark.client.to_table_as_iterator(
                frame._plan.to_proto(spark.client), frame._plan.observations
            )
            first = next(stream, None)
        finally:
            for tag in tags:
                spark.removeTag(tag)
        return stream, first

    def limit_sql(self, rows: int) -> str:
        """Spark's LIMIT takes an INT: a larger limit (a scheduled export's or a sync's, no
        cap in practice) is not written, and every row is read."""
        return "" if rows > MAX_LIMIT else super().limit_sql(rows)

    def relation_refresh(self, relation: str) -> None:
        """The session keeps each file-based table's file list (and schema) from its first
        read for as long as the process lives: rows another application appended since
        would be missing, a table rewritten since would fail to read (its old files are
        gone). The connector refreshes its port's table before its first statement (one
        per check run, read or fingerprint); a statement naming other tables (a federated
        query) refreshes each through this. `relation` is SQL naming a table (quoted)."""
        try:
            self._refresh(self._spark(), relation)
        except ConnectorError:
            raise
        except Exception as exc:
            raise self._error(exc) from exc

    def _table_refresh(self, spark: SparkSession) -> None:
        """The port's table (none for a source's connector), inside a statement's own
        error handling (see relation_refresh)."""
        if self.table_name:
            self._refresh(spark, self.relation_sql())

    def _refresh(self, spark: SparkSession, relation: str) -> None:
        if relation not in self._refreshed:
            spark.catalog.refreshTable(relation)
            self._refreshed.add(relation)

    def interrupt(self) -> None:
        """Stop the statements this connector is running (from another thread)."""
        with self._tags_lock:
            tags = list(self._tags)
        if not tags:
            return
        spark = self._spark()
        for tag in tags:
            _interrupt(spark, tag)

    def sessions_cancel(self, session_label: str) -> int:
        """Interrupt the statements started with `session_label` (see arrow_batches) on
        this process's session; how many were interrupted."""
        spark = self._spark()
        try:
            return len(spark.interruptTag(session_label) or [])
        except Exception as exc:
            raise self._error(exc) from exc

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        raise ConnectorError(
            "A Spark source has no DB-API cursor: read it with fetch() or arrow_batches()."
        )
        yield  # pragma: no cover - a generator for contextmanager

    def close(self) -> None:
        """Nothing to close: the session is the process's (released at its exit)."""

    # --- sessions and errors ----------------------------------------------------------

    def _spark(self) -> SparkSession:
        try:
            return _session(self.endpoint)
        except ConnectorError:
            raise
        except Exception as exc:
            raise self._error(exc) from exc

    def _where(self) -> str:
        return f"{self.endpoint.host}:{self.endpoint.port}"

    def _error(self, exc: Exception) -> ConnectorError:
        """Spark's error, as the connector's: the message safe for any reader, the
        detail (Spark's own first line, the server's address) for members and admins."""
        reason = _reason(exc)
        condition, state, status = _condition(exc), _sqlstate(exc), _grpc_status(exc)
        if status in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            return ConnectorError(
                f"Data source {self.label!r} could not be reached.",
                detail=f"Cannot connect to the Spark Connect server of data source "
                f"{self.label!r} ({self._where()}): {reason}",
            )
        if (
            status in ("UNAUTHENTICATED", "PERMISSION_DENIED")
            or condition.startswith(PERMISSION_CONDITIONS)
            or state in PERMISSION_SQLSTATES
        ):
            return SourceAccessRefused(
                f"Data source {self.label!r} refused the portal's access: the Spark "
                "principal of its token lacks a permission.",
                detail=f"Spark refused access on data source {self.label!r} "
                f"({self._where()}): {reason}",
            )
        if condition.startswith(MISSING_CONDITIONS) or state in MISSING_SQLSTATES:
            what = (
                f"Table {self.schema_name}.{self.table_name} (or a column of it)"
                if self.table_name
                else "A schema or table the query names"
            )
            return RelationMissing(
                f"{what} was not found on data source {self.label!r}.",
                detail=f"Query failed on {self.label!r}: {reason}",
            )
        if condition.startswith("INVALID_HANDLE"):
            return ConnectorError(
                f"Data source {self.label!r} ended the portal's session; try again.",
                detail=f"Spark session lost on {self.label!r} ({self._where()}): {reason}",
            )
        return ConnectorError(
            f"The query on data source {self.label!r} failed.",
            detail=f"Query failed on {self.label!r}: {reason}",
        )

    def _cancelled(self, exc: Exception, *, timed_out: bool) -> ConnectorError:
        if timed_out:
            return ConnectorError(
                f"The query on {self.label!r} was cancelled after its time limit.",
                detail=f"Interrupted on {self.label!r} ({self._where()}): {_reason(exc)}",
            )
        return ConnectorError(
            f"The query on {self.label!r} was cancelled.",
            detail=f"Interrupted on {self.label!r} ({self._where()}): {_reason(exc)}",
        )


# --- what a statement may be ---------------------------------------------------------------


def read_only_check(sql: str) -> None:
    """Refuse anything but one read-only query (ConnectorError): Spark would run a
    command given to `spark.sql()` at once, and has no read-only session to refuse it."""
    if "${" in sql:  # Spark's variable substitution: settings and environment variables
        raise ConnectorError(
            "The statement was not sent to Spark: it holds `${`, which Spark would replace "
            "with a server setting or an environment variable.",
        )
    # Lazy: sqlglot (~7 MB) only where a Spark statement is sent.
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(sql, read="spark") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise ConnectorError(
            "The statement was not sent to Spark: it could not be read as one query.",
            detail=str(exc).splitlines()[0],
        ) from exc
    if len(statements) != 1 or not isinstance(statements[0], exp.Query | exp.Values):
        raise ConnectorError("Only one read-only query (SELECT) is sent to a Spark source.")
    writes = (
        exp.Insert, exp.Create, exp.Drop, exp.Delete, exp.Update, exp.Merge, exp.Alter,
        exp.Command, exp.Set, exp.Use, exp.Cache, exp.Uncache, exp.Refresh, exp.Into,
        exp.TruncateTable, exp.LoadData, exp.Copy,
    )  # fmt: skip
    found = next(statements[0].find_all(*writes), None)
    if found is not None:
        raise ConnectorError(
            "Only one read-only query (SELECT) is sent to a Spark source.",
            detail=f"The statement holds a {found.key.upper()}.",
        )


# --- values -------------------------------------------------------------------------------


def _bindable(value: Any) -> Any:
    """A parameter as Spark binds it: a naive datetime is read as UTC (the sessions'
    time zone), not the portal host's local time, as the client would."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _type_name(data_type) -> str:
    name = data_type.simpleString()
    return "timestamp_ltz" if name == "timestamp" else name


def _empty_batch(schema):
    """An empty record batch with the columns of a Spark schema (in UTC)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    return pa.RecordBatch.from_pylist([], schema=to_arrow_schema(schema, timezone="UTC"))


# --- errors -------------------------------------------------------------------------------


def _condition(exc: Exception) -> str:
    getter = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    try:
        return (getter() if getter else None) or ""
    except Exception:  # noqa: BLE001 - an exception that cannot say
        return ""


def _sqlstate(exc: Exception) -> str:
    try:
        return getattr(exc, "getSqlState", lambda: None)() or ""
    except Exception:  # noqa: BLE001
        return ""


def _grpc_status(exc: Exception) -> str:
    """The gRPC status of a failed call ("UNAVAILABLE"), "" when it is Spark's own error."""
    getter = getattr(exc, "getGrpcStatusCode", None)
    code = None
    if getter is not None:
        try:
            code = getter()
        except Exception:  # noqa: BLE001
            code = None
    elif hasattr(exc, "code") and callable(exc.code):  # a grpc.RpcError itself
        code = exc.code()
    name = getattr(code, "name", "")
    # Spark's own errors come as INTERNAL (or UNKNOWN) with a condition: not the network.
    return "" if name in ("INTERNAL", "UNKNOWN", "OK") else name


_GRPC_DETAILS = re.compile(r'details = "([^"\n]*)"')


def _reason(exc: Exception) -> str:
    """Spark's message without its JVM stack trace, or gRPC's details of a failed call."""
    text = str(exc).strip()
    details = _GRPC_DETAILS.search(text)
    if details:
        return details.group(1)
    return (text.splitlines() or [exc.__class__.__name__])[0]


def _session_gone(exc: Exception) -> bool:
    return _condition(exc).startswith(SESSION_GONE_CONDITIONS)


# --- the process's sessions ----------------------------------------------------------------

_sessions: dict[SparkEndpoint, SparkSession] = {}
_sessions_lock = threading.Lock()
_sessions_pid = os.getpid()


def _pyspark_client():
    """pyspark's Spark Connect classes, imported on first use (with pandas, pyarrow and
    gRPC); ConnectorError when the client is not installed."""
    try:
        with warnings.catch_warnings():
            # "PySpark does not yet fully support pandas >= 3.0.0": the connector reads
            # Arrow, never pandas.
            warnings.simplefilter("ignore", FutureWarning)
            from pyspark.logger import PySparkLogger
            from pyspark.sql.connect.client import DefaultChannelBuilder
            from pyspark.sql.connect.client.retries import DefaultPolicy
            from pyspark.sql.connect.session import SparkSession
    except ImportError as exc:
        raise ConnectorError(
            "Spark sources cannot be read: the Spark Connect client is not installed.",
            detail=f"import pyspark.sql.connect failed: {exc} (pip install pyspark-client)",
        ) from exc
    # The client logs every query error (with the server's stack trace) to stderr by
    # itself; the connector raises them as its own errors instead.
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
    # Said once more by the error the connector raises ("could not be reached").
    warnings.filterwarnings("ignore", message=r"\[RETRIES_EXCEEDED\]", category=UserWarning)
    return SparkSession, DefaultChannelBuilder, DefaultPolicy


def _channel_builder(endpoint: SparkEndpoint):
    _, DefaultChannelBuilder, _ = _pyspark_client()

    class SourceChannelBuilder(DefaultChannelBuilder):
        """The endpoint's own token, or none: never the process's
        SPARK_CONNECT_AUTHENTICATE_TOKEN, which would reach every source."""

        @property
        def token(self) -> str | None:
            return self._params.get(self.PARAM_TOKEN)

    builder = SourceChannelBuilder(endpoint.url)
    # gRPC waits up to 2 minutes between attempts to reconnect a channel that lost its
    # server; a restarted server is to be found again within a second or two.
    for option, value in GRPC_RECONNECT_OPTIONS.items():
        builder.setChannelOption(option, value)
    if endpoint.token is not None:
        builder.set(builder.PARAM_TOKEN, endpoint.token)
    builder.set(builder.PARAM_USER_ID, endpoint.user_id or USER_AGENT)
    builder.set(builder.PARAM_USER_AGENT, USER_AGENT)
    if endpoint.cluster_id:
        # A parameter that is not the builder's own goes as gRPC metadata on every call
        # (ChannelBuilder.metadata()), as Databricks Connect sends it.
        builder.set(CLUSTER_HEADER, endpoint.cluster_id)
    return builder


def _session(endpoint: SparkEndpoint) -> SparkSession:
    """This process's session on `endpoint`, opened (and set to UTC) on first use."""
    global _sessions_pid
    with _sessions_lock:
        if _sessions_pid != os.getpid():
            # A forked child: the parent's gRPC channels are not its to use.
            _sessions.clear()
            _sessions_pid = os.getpid()
        kept = _sessions.get(endpoint)
    if kept is not None and not kept.is_stopped:
        return kept
    SparkSession, _, DefaultPolicy = _pyspark_client()
    spark = SparkSession(connection=_channel_builder(endpoint))
    spark.client.set_retry_policies(
        [DefaultPolicy(max_retries=CONNECT_RETRIES, max_backoff=1000, jitter=100)]
    )
    try:
        # The first call to the server: an unreachable one fails here.
        for key, value in SESSION_SETTINGS.items():
            spark.conf.set(key, value)
        try:
            for key, value in SESSION_HARDENING.items():
                spark.conf.set(key, value)
        except Exception as exc:  # noqa: BLE001 - a managed service's refusal
            if _grpc_status(exc):
                raise
            logger.warning(
                "Spark Connect server %s keeps file queries on: %s", endpoint.url, _reason(exc)
            )
    except Exception:
        _stop_quietly(spark, release=False)  # nothing to release on a server not reached
        raise
    with _sessions_lock:
        kept = _sessions.get(endpoint)
        if kept is None or kept.is_stopped:
            _sessions[endpoint] = spark
            return spark
    _stop_quietly(spark)  # another thread opened one meanwhile
    return kept


def spark_session_open(endpoint: SparkEndpoint) -> SparkSession:
    """A Spark Connect session of its own on `endpoint`, in UTC, for the portal's own
    writers (tests' tables, the demo's warehouse on the local server): none of the
    connector's guards apply to it. The caller stops it."""
    SparkSession, _, DefaultPolicy = _pyspark_client()
    spark = SparkSession(connection=_channel_builder(endpoint))
    spark.client.set_retry_policies([DefaultPolicy(max_retries=CONNECT_RETRIES)])
    for key, value in SESSION_SETTINGS.items():
        spark.conf.set(key, value)
    return spark


def _session_forget(endpoint: SparkEndpoint, spark: SparkSession) -> None:
    with _sessions_lock:
        if _sessions.get(endpoint) is spark:
            del _sessions[endpoint]
    _stop_quietly(spark, release=False)


def _interrupt(spark: SparkSession, tag: str) -> None:
    try:
        spark.interruptTag(tag)
    except Exception as exc:  # noqa: BLE001 - the statement's own error says more
        logger.info("Interrupting Spark statement %s failed: %s", tag, _reason(exc))


def _stop_quietly(spark: SparkSession, *, release: bool = True) -> None:
    spark.release_session_on_close = release
    try:
        spark.stop()
    except Exception:  # noqa: BLE001 - stop() is best effort itself
        pass


def spark_sessions_close() -> None:
    """Release this process's sessions on their servers (at exit; tests that stop a
    server first call it)."""
    with _sessions_lock:
        if _sessions_pid != os.getpid():
            _sessions.clear()
            return
        sessions = list(_sessions.values())
        _sessions.clear()
    for spark in sessions:
        _stop_quietly(spark)


atexit.register(spark_sessions_close)
