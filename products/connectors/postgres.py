from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode

import psycopg

from products.connectors.base import (
    ColumnInfo,
    Connector,
    ConnectorError,
    RelationMissing,
    SourceAccessRefused,
)

CONNECT_TIMEOUT_SECONDS = 5
APPLICATION_NAME = "data-product-portal"  # how the portal's sessions show on a source
STATEMENT_TIMEOUT_MS = 60_000
SERVING_TIMEOUT_MS = 15 * 60_000  # downloads of large tables take a while
# The size ADBC aims at per Arrow batch (the driver holds about three of them at a time:
# 16 MB batches cost a reader ~50 MB, 4 MB ones ~12 MB, at about the same speed).
ARROW_BATCH_BYTES = 4 * 1024 * 1024
# undefined_table, invalid_schema_name, undefined_column: the relation (or a known column)
# is not in the database, as opposed to a connection, permission or timeout problem.
# The unique keys of a relation (bound: its quoted name), one row per valid unique index
# that is neither partial nor on an expression: its key columns (not its INCLUDE ones),
# and whether every one of them is NOT NULL. Sources (Connector.key_is_unique) and sync
# destinations (what ON CONFLICT can name) read them alike.
UNIQUE_KEYS_SQL = (
    "SELECT array_agg(a.attname::text ORDER BY a.attnum), bool_and(a.attnotnull) "
    "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid "
    "AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]) "
    "WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indisvalid "
    "AND i.indpred IS NULL AND i.indexprs IS NULL GROUP BY i.indexrelid"
)
MISSING_SQLSTATES = {"42P01", "3F000", "42703"}
INSUFFICIENT_PRIVILEGE = "42501"  # the portal's role may not read it: SourceAccessRefused
# An ADBC connection opened from nothing costs ~50 ms: the driver first reads the server's
# type catalogue. One cloned from a connection already open to the same address shares
# that catalogue and costs ~2 ms. So each process keeps one idle connection per address
# (autocommit: no transaction) and every read clones its own from it, closed after the
# read: no session state or transaction outlives a read, and a restarted server costs
# nothing but the next clone. The kept one is renewed after this long, so that types
# created on the source since (an enum, a domain) are read again.
ADBC_TEMPLATE_MAX_AGE_SECONDS = 300
_adbc_templates: dict[str, tuple[float, Any]] = {}
_adbc_templates_lock = threading.Lock()
_adbc_templates_pid = os.getpid()


def _adbc_connect(uri: str):
    """A new ADBC connection to `uri` (close it after use), cloned from this process's
    template connection to the same address."""
    # Lazy: the ADBC driver only where Arrow is read from PostgreSQL.
    import adbc_driver_postgresql.dbapi as adbc

    global _adbc_templates_pid
    now = time.monotonic()
    with _adbc_templates_lock:
        if _adbc_templates_pid != os.getpid():
            # A forked child: the parent's connections are not its to use.
            _adbc_templates.clear()
            _adbc_templates_pid = os.getpid()
        # Renew old ones; an address no longer read (a rotated password) is let go.
        expired = [
            _adbc_templates.pop(key)[1]
            for key, (opened, _) in list(_adbc_templates.items())
            if now - opened > ADBC_TEMPLATE_MAX_AGE_SECONDS
        ]
        kept = _adbc_templates.get(uri)
    for template in expired:
        template.close()  # clones still open keep the shared driver state alive
    if kept is None:
        template = adbc.connect(uri, autocommit=True)
        with _adbc_templates_lock:
            kept = _adbc_templates.setdefault(uri, (now, template))
        if kept[1] is not template:  # another thread opened one meanwhile
            template.close()
    return kept[1].adbc_clone()


def adbc_templates_close() -> None:
    """Close this process's kept ADBC connections (before dropping a database they are
    connected to, as a test run does at its end)."""
    with _adbc_templates_lock:
        templates = [template for _, template in _adbc_templates.values()]
        _adbc_templates.clear()
    for template in templates:
        template.close()


class PostgresConnector(Connector):
    dialect = "postgresql"
    paramstyle = "%s"

    @staticmethod
    def quote_ident(name: str) -> str:
        """As the standard's, but a name holding `%` is written with Unicode escapes
        (`U&"rate \\0025"` for `rate %`): psycopg reads each `%` of a statement it binds
        values into as a placeholder's start, so `"a%b"` with a row filter's value failed
        ("3 placeholders but 1 parameters"). The escaped name leaves no `%` in the text."""
        quoted = Connector.quote_ident(name)
        if "%" not in name:
            return quoted
        return "U&" + quoted.replace("\\", "\\\\").replace("%", "\\0025")

    def __init__(self, *, source, schema_name: str, table_name: str) -> None:
        self.source = source
        self.schema_name = schema_name or "public"
        self.table_name = table_name
        self._conn: psycopg.Connection | None = None

    def _connect(self) -> psycopg.Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        source = self.source
        kwargs: dict[str, Any] = {
            **self._conninfo(),
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            "application_name": APPLICATION_NAME,
        }
        try:
            conn = psycopg.connect(**kwargs)
        except psycopg.Error as exc:
            raise ConnectorError(
                f"Data source {source.name!r} could not be reached.",
                detail=f"Cannot connect to data source {source.name!r} "
                f"({kwargs['host']}:{kwargs['port']}/{source.database}): {_first_line(exc)}",
            ) from exc
        conn.read_only = True
        self._conn = conn
        return conn

    def _conninfo(self) -> dict[str, Any]:
        source = self.source
        info: dict[str, Any] = {
            "host": source.host or "localhost",
            "port": source.port or 5432,
            "dbname": source.database,
            "user": source.username or None,
        }
        if source.password_env:
            password = os.environ.get(source.password_env)
            if password is None:
                raise ConnectorError(
                    f"The environment variable {source.password_env} named by data source "
                    f"{source.name!r} is not set on this host."
                )
            info["password"] = password
        return {k: v for k, v in info.items() if v is not None}

    @staticmethod
    def arrow_placeholder(index: int) -> str:
        return f"${index}"

    def arrow_batches(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        batch_rows: int,
        timeout_seconds: float | None = None,
        session_label: str | None = None,
    ) -> Iterator[Any]:
        """Arrow batches straight from PostgreSQL's binary COPY protocol (ADBC), in a
        read-only session with a statement timeout (the server cancels the statement).
        `session_label`: the session's application_name while it runs, by which
        `sessions_cancel` finds it (a federated query's id)."""
        # Lazy: the ADBC driver only where Arrow is read from PostgreSQL.
        import adbc_driver_postgresql.dbapi as adbc

        info = self._conninfo()
        info["options"] = (
            "-c default_transaction_read_only=on -c statement_timeout="
            f"{int(timeout_seconds * 1000) if timeout_seconds else SERVING_TIMEOUT_MS}"
        )
        info["connect_timeout"] = str(CONNECT_TIMEOUT_SECONDS)
        info["application_name"] = APPLICATION_NAME
        uri = "postgresql://?" + urlencode(info, quote_via=quote)
        try:
            with _adbc_connect(uri) as conn, conn.cursor() as cur:
                cur.adbc_statement.set_options(
                    **{"adbc.postgresql.batch_size_hint_bytes": str(ARROW_BATCH_BYTES)}
                )
                if session_label:
                    cur.execute("SELECT set_config('application_name', $1, false)", [session_label])
                    cur.fetchall()
                cur.execute(sql, list(params) if params else None)
                reader = cur.fetch_record_batch()
                for batch in reader:
                    # Re-chunk to at most batch_rows rows: bounded memory downstream.
                    for offset in range(0, batch.num_rows, batch_rows):
                        yield batch.slice(offset, batch_rows)
        except adbc.Error as exc:
            raise self._query_error(exc) from exc
        except OSError as exc:
            # An error met while the batches stream (a statement cancelled by its time
            # limit or by pg_cancel_backend) comes through pyarrow's reader as OSError.
            raise self._query_error(exc) from exc

    def copy_csv(self, sql: str, params: Sequence[Any], *, chunk_bytes: int) -> Iterator[bytes]:
        """`COPY (<sql>) TO STDOUT` as CSV with a header, in chunks of about chunk_bytes.
        Placeholders are %s (bound by psycopg, client side, as quoted literals)."""
        return self._copy_out(sql, params, "FORMAT csv, HEADER", chunk_bytes=chunk_bytes)

    def copy_binary(self, sql: str, params: Sequence[Any], *, chunk_bytes: int) -> Iterator[bytes]:
        """As copy_csv, in PostgreSQL's binary COPY format: what another PostgreSQL's
        `COPY ... FROM STDIN (FORMAT binary)` reads without parsing text, into columns of
        the same types."""
        return self._copy_out(sql, params, "FORMAT binary", chunk_bytes=chunk_bytes)

    def _copy_out(
        self, sql: str, params: Sequence[Any], options: str, *, chunk_bytes: int
    ) -> Iterator[bytes]:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [str(SERVING_TIMEOUT_MS)]
                )
                copy_sql = f"COPY ({sql}) TO STDOUT WITH ({options})"
                with cur.copy(copy_sql, list(params) if params else None) as copy:
                    buffer = bytearray()
                    for data in copy:
                        buffer += data
                        if len(buffer) >= chunk_bytes:
                            yield bytes(buffer)
                            buffer.clear()
                    if buffer:
                        yield bytes(buffer)
                self.last_rowcount = cur.rowcount  # "COPY n": the rows served
        except psycopg.Error as exc:
            raise self._query_error(exc) from exc
        finally:
            if not conn.closed:
                conn.rollback()

    def sessions_cancel(self, session_label: str) -> int:
        """Cancel the statements running on the source in sessions labelled
        `session_label` (see arrow_batches); how many were signalled."""
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) "
                    "FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
                    [session_label],
                )
                return int(cur.fetchone()[0])
        except psycopg.Error as exc:
            raise self._query_error(exc) from exc
        finally:
            if not conn.closed:
                conn.rollback()

    def plan_estimate(
        self, sql: str, params: Sequence[Any], *, timeout_seconds: float | None = None
    ) -> tuple[float, float]:
        """PostgreSQL's estimate of a statement written with `$n` placeholders (as for
        arrow_batches), nothing run: (total cost, rows)."""
        conn = self._connect()
        try:
            with psycopg.RawCursor(conn) as cur:
                if timeout_seconds:
                    cur.execute(
                        "SELECT set_config('statement_timeout', $1, true)",
                        [str(int(timeout_seconds * 1000))],
                    )
                cur.execute(f"EXPLAIN (FORMAT JSON) {sql}", list(params) or None)
                top = cur.fetchone()[0][0]["Plan"]
            return float(top.get("Total Cost", 0)), float(top.get("Plan Rows", 0))
        except psycopg.Error as exc:
            raise self._query_error(exc) from exc
        finally:
            if not conn.closed:
                conn.rollback()

    def _query_error(self, exc: Exception) -> ConnectorError:
        """psycopg's and ADBC's errors both carry the SQLSTATE."""
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate == INSUFFICIENT_PRIVILEGE:
            return SourceAccessRefused(
                f"Data source {self.source.name!r} refused the portal's access: its role "
                "lacks a permission.",
                detail=f"Query failed on {self.source.name!r}: {_first_line(exc)}",
            )
        error = RelationMissing if sqlstate in MISSING_SQLSTATES else ConnectorError
        return error(f"Query failed on {self.source.name!r}: {_first_line(exc)}")

    def relation_sql(self) -> str:
        return f"{self.quote_ident(self.schema_name)}.{self.quote_ident(self.table_name)}"

    def describe(self) -> list[ColumnInfo]:
        rows = self.fetch(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, a.attnum "
            "FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            [self.schema_name, self.table_name],
        )
        if not rows:
            raise RelationMissing(
                f"Table {self.schema_name}.{self.table_name} was not found on data source "
                f"{self.source.name!r}, or it has no columns."
            )
        return [
            ColumnInfo(name=name, data_type=dtype, nullable=bool(nullable), position=i)
            for i, (name, dtype, nullable, _attnum) in enumerate(rows)
        ]

    def key_is_unique(self, columns: list[str]) -> bool:
        """A unique key of the relation (UNIQUE_KEYS_SQL) within `columns`, on NOT NULL
        columns only (a unique index lets rows with a NULL repeat): a primary key, or a
        unique constraint on NOT NULL columns."""
        rows = self.fetch(UNIQUE_KEYS_SQL, [self.relation_sql()])
        return any(not_null and set(keys) <= set(columns) for keys, not_null in rows)

    def fetch(
        self, sql: str, params: Sequence[Any] = (), *, timeout_seconds: float | None = None
    ) -> list[tuple]:
        return self._run(sql, params, timeout_seconds=timeout_seconds)[1]

    def fetch_with_names(
        self, sql: str, params: Sequence[Any] = ()
    ) -> tuple[list[str], list[tuple]]:
        return self._run(sql, params)

    def _run(
        self, sql: str, params: Sequence[Any], *, timeout_seconds: float | None = None
    ) -> tuple[list[str], list[tuple]]:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                if timeout_seconds:
                    cur.execute(
                        "SELECT set_config('statement_timeout', %s, true)",
                        [str(int(timeout_seconds * 1000))],
                    )
                # No params: psycopg leaves the text alone (a LIKE 'a%' stays as written).
                cur.execute(sql, list(params) if params else None)
                names = [column.name for column in cur.description or []]
                rows = cur.fetchall() if cur.description else []
            conn.rollback()
            return names, rows
        except psycopg.errors.QueryCanceled as exc:
            conn.rollback()
            raise ConnectorError(
                f"The query on {self.source.name!r} was cancelled after its time limit."
            ) from exc
        except psycopg.Error as exc:
            conn.rollback()
            raise self._query_error(exc) from exc

    @contextmanager
    def cursor(self) -> Iterator[psycopg.Cursor]:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.rollback()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]
