from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from products.connectors.base import ColumnInfo, Connector, ConnectorError

CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_MS = 60_000


class PostgresConnector(Connector):
    dialect = "postgresql"
    paramstyle = "%s"

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
            "host": source.host or "localhost",
            "port": source.port or 5432,
            "dbname": source.database,
            "user": source.username or None,
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            "application_name": "data-product-portal",
        }
        if source.password_env:
            password = os.environ.get(source.password_env)
            if password is None:
                raise ConnectorError(
                    f"The environment variable {source.password_env} named by data source "
                    f"{source.name!r} is not set on this host."
                )
            kwargs["password"] = password
        try:
            conn = psycopg.connect(**{k: v for k, v in kwargs.items() if v is not None})
        except psycopg.Error as exc:
            raise ConnectorError(
                f"Cannot connect to data source {source.name!r} "
                f"({kwargs['host']}:{kwargs['port']}/{source.database}): {_first_line(exc)}"
            ) from exc
        conn.read_only = True
        self._conn = conn
        return conn

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
            raise ConnectorError(
                f"Table {self.schema_name}.{self.table_name} was not found on data source "
                f"{self.source.name!r}, or it has no columns."
            )
        return [
            ColumnInfo(name=name, data_type=dtype, nullable=bool(nullable), position=i)
            for i, (name, dtype, nullable, _attnum) in enumerate(rows)
        ]

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
            message = f"Query failed on {self.source.name!r}: {_first_line(exc)}"
            raise ConnectorError(message) from exc

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
