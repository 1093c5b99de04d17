"""The connector layer: one interface over every SQL engine where port data lives.

Connectors read metadata (columns and types) now; checks, metrics and serving compile SQL
against `relation_sql()` with identifiers quoted by `quote_ident()` and values bound.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


class ConnectorError(Exception):
    """The source could not be reached or read. The message is safe to show every reader;
    `detail` holds the technical reason (the source's address, the driver's error) for the
    domain's members and admins only."""

    status = 502  # what a reader is answered: the source could not be reached or read

    def __init__(self, message: str = "", *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail

    @property
    def technical(self) -> str:
        """The text for the domain's members and admins: the detail when there is one."""
        return self.detail or str(self)


class RelationMissing(ConnectorError):
    """The source answered, but the port's table, view or file, or a column the portal
    knows of it, is not there: the port points at something missing (an editor moved it,
    or a contract declared it before it was built). Not an outage: readers get a 404."""

    status = 404


class SourceAccessRefused(ConnectorError):
    """The source answered, but refused the portal's own account (its role or token) a
    permission on the port's data: its operators must grant it. Readers get a 403."""

    status = 403


class LocationRefused(ConnectorError):
    """The port names a relation or file its domain may not use (an allowance was
    withdrawn, or the port was saved before sources belonged to domains): nothing reads
    it until its owners move it. `detail` says which rule refused it."""


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    data_type: str
    nullable: bool
    position: int


class Connector(ABC):
    """A read-only connection to one port's relation on a SQL engine."""

    dialect: str
    paramstyle: str  # "%s" (psycopg) or "?" (DuckDB)

    @abstractmethod
    def describe(self) -> list[ColumnInfo]:
        """The relation's columns in order. Raises ConnectorError."""

    @abstractmethod
    def relation_sql(self) -> str:
        """SQL naming the port's relation, safe to put in a FROM clause."""

    @abstractmethod
    def fetch(
        self, sql: str, params: Sequence[Any] = (), *, timeout_seconds: float | None = None
    ) -> list[tuple]:
        """Run one read-only statement and return its rows, cancelling it after
        `timeout_seconds` when given. Raises ConnectorError."""

    @abstractmethod
    def fetch_with_names(
        self, sql: str, params: Sequence[Any] = ()
    ) -> tuple[list[str], list[tuple]]:
        """Like fetch, with the result's column names."""

    @contextmanager
    @abstractmethod
    def cursor(self) -> Iterator[Any]:
        """A read-only DB-API cursor for streaming reads."""

    @abstractmethod
    def arrow_batches(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        batch_rows: int,
        timeout_seconds: float | None = None,
    ) -> Iterator[Any]:
        """Stream the statement's result as pyarrow RecordBatches (bounded memory).
        Placeholders are `arrow_placeholder(i)` (1-based). `timeout_seconds`: cancelled
        on the source after this long (default: the engine's serving limit). Raises
        ConnectorError."""

    @staticmethod
    def arrow_placeholder(index: int) -> str:
        return "?"

    def relations(self, schema_name: str) -> list[str]:
        """The tables and views of a schema of the source, by name (for people choosing
        one; at most 1,000), from the information schema both engines have."""
        rows = self.fetch(
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = {self.paramstyle} ORDER BY table_name LIMIT 1000",
            [schema_name],
        )
        return [row[0] for row in rows]

    def schemas(self) -> list[str]:
        """The schemas of the source that hold tables or views, by name."""
        rows = self.fetch(
            "SELECT DISTINCT table_schema FROM information_schema.tables "
            "ORDER BY table_schema LIMIT 1000"
        )
        return [row[0] for row in rows]

    def limit_sql(self, rows: int) -> str:
        """` LIMIT rows`, as the engine takes it (see SparkConnector's)."""
        return f" LIMIT {int(rows)}"

    def numbered_relation(self) -> tuple[str, str] | None:
        """(relation SQL, position column): the port's rows with each row's position in
        the source, to read a few rows by position; None when the source has none."""
        return None

    def key_is_unique(self, columns: list[str]) -> bool:
        """True when the source itself guarantees that no two rows of the relation share
        these columns' values (a primary key or unique constraint within them, on columns
        that cannot be NULL): a reader may then skip looking for repeats. False when the
        engine cannot say, which only means "look"."""
        return False

    def relation_refresh(self, relation: str) -> None:  # noqa: B027 - optional hook
        """Forget what this process's session remembers of `relation` (SQL naming it), so
        that the next statement reads it as it is now. Only Spark remembers anything (a
        table's file list); the others read the relation afresh every statement."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def quote_ident(name: str) -> str:
        """Quote an identifier the SQL-standard way (PostgreSQL and DuckDB agree)."""
        if "\x00" in name:
            raise ValueError("identifier contains a NUL byte")
        return '"' + name.replace('"', '""') + '"'
