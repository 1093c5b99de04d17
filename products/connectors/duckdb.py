from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from products.connectors.base import ColumnInfo, Connector, ConnectorError, RelationMissing

if TYPE_CHECKING:
    import duckdb

FILE_VIEW = "port_data"
# The same Parquet rows with their position in the file, for check samples only: readers,
# describe() and custom SQL's `{table}` see FILE_VIEW, without it.
NUMBERED_VIEW = "port_data_numbered"
ROW_NUMBER_COLUMN = "file_row_number"
MEMORY_LIMIT = "100MB"
# File instances a process keeps for its connectors that reuse them (see _shared_file_instance).
SHARED_FILE_INSTANCES = 8


def _temp_directory() -> Path:
    path = Path(tempfile.gettempdir()) / "portal-duckdb-spill"
    path.mkdir(exist_ok=True)
    return path


class DuckDBConnector(Connector):
    """Tables in a DuckDB database file (opened read-only), or a CSV/Parquet file read
    through an in-memory DuckDB, exposed as the view `port_data`."""

    dialect = "duckdb"
    paramstyle = "?"

    def __init__(
        self,
        *,
        database_path: str | None = None,
        schema_name: str = "",
        table_name: str = "",
        file_path: str | None = None,
        file_format: str = "",
        label: str = "",
        threads: int | None = None,
        reuse_instance: bool = False,
    ) -> None:
        self.database_path = database_path
        self.schema_name = schema_name or "main"
        self.table_name = table_name
        self.file_path = file_path
        self.file_format = file_format
        self.label = label or (file_path or database_path or "duckdb")
        self.threads = threads  # None: DuckDB's default (one per core)
        # A file's in-memory DuckDB kept by the process and shared by its connectors
        # (each with a cursor of its own), instead of one instance per connector.
        self.reuse_instance = reuse_instance and file_path is not None
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._numbered: bool | None = None  # NUMBERED_VIEW created (None: not tried yet)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._conn is not None:
            return self._conn
        if self.reuse_instance:
            instance = _shared_file_instance(self)
            self._conn = instance.conn.cursor()
            self._numbered = instance.numbered
            return self._conn
        self._conn = self._open()
        return self._conn

    def _open(self, *, numbered: bool = False) -> duckdb.DuckDBPyConnection:
        """A new DuckDB instance on the port's data, locked down."""
        # Imported here, not at the top: DuckDB (~12 MB) stays out of every process
        # that never opens a DuckDB port (an idle Celery worker, most web requests).
        import duckdb

        try:
            if self.file_path is not None:
                if not Path(self.file_path).is_file():
                    raise RelationMissing(f"The file {self.label} does not exist.")
                conn = duckdb.connect(":memory:")
                if self.file_format == "csv":
                    relation = conn.read_csv(self.file_path)
                else:
                    relation = conn.read_parquet(self.file_path)
                relation.create_view(FILE_VIEW)
                if numbered:
                    self._numbered = _create_numbered_view(conn, self.file_path)
                # Queries (custom SQL included) may read this file and nothing else.
                conn.execute("SET allowed_paths = ?", [[self.file_path]])
            else:
                if not self.database_path or not Path(self.database_path).is_file():
                    raise ConnectorError(f"The DuckDB database file {self.label} does not exist.")
                conn = duckdb.connect(self.database_path, read_only=True)
            # Bounded memory (DuckDB's default is 80% of RAM): big sorts and groupings
            # spill to a temporary directory instead.
            conn.execute("SET memory_limit = ?", [MEMORY_LIMIT])
            conn.execute("SET temp_directory = ?", [str(_temp_directory())])
            if self.threads:
                conn.execute("SET threads = ?", [self.threads])
            # No other file, no network, no extension; and no query can undo it.
            conn.execute("SET enable_external_access = false")
            conn.execute("SET lock_configuration = true")
        except duckdb.Error as exc:
            raise ConnectorError(f"Cannot open {self.label}: {_first_line(exc)}") from exc
        return conn

    def relation_sql(self) -> str:
        if self.file_path is not None:
            return self.quote_ident(FILE_VIEW)
        return f"{self.quote_ident(self.schema_name)}.{self.quote_ident(self.table_name)}"

    def numbered_relation(self) -> tuple[str, str] | None:
        # Parquet only: its reader numbers rows, and skips the row groups a filter on
        # that number rules out.
        # A CSV file is parsed whole whatever is asked of it.
        if self.file_path is None or self.file_format == "csv":
            return None
        conn = self._connect()
        if self._numbered is None:
            self._numbered = _create_numbered_view(conn, self.file_path)
        if not self._numbered:
            return None
        return self.quote_ident(NUMBERED_VIEW), self.quote_ident(ROW_NUMBER_COLUMN)

    def describe(self) -> list[ColumnInfo]:
        conn = self._connect()
        import duckdb  # loaded by _connect() already

        try:
            if self.file_path is not None:
                relation = conn.table(FILE_VIEW)
                return [
                    ColumnInfo(name=name, data_type=str(dtype), nullable=True, position=i)
                    for i, (name, dtype) in enumerate(
                        zip(relation.columns, relation.types, strict=True)
                    )
                ]
            rows = conn.execute(
                "SELECT column_name, data_type, is_nullable = 'YES' "
                "FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [self.schema_name, self.table_name],
            ).fetchall()
        except duckdb.Error as exc:
            raise ConnectorError(f"Cannot read {self.label}: {_first_line(exc)}") from exc
        if not rows:
            raise RelationMissing(
                f"Table {self.schema_name}.{self.table_name} was not found in {self.label}."
            )
        return [
            ColumnInfo(name=name, data_type=dtype, nullable=bool(nullable), position=i)
            for i, (name, dtype, nullable) in enumerate(rows)
        ]

    def key_is_unique(self, columns: list[str]) -> bool:
        """A primary key or unique constraint of the table within `columns`, on NOT NULL
        columns only (DuckDB enforces both; a unique column that may be NULL lets NULLs
        repeat). A file, or a view, has none."""
        if self.file_path is not None:
            return False
        keys = self.fetch(
            "SELECT constraint_column_names FROM duckdb_constraints() WHERE schema_name = ? "
            "AND table_name = ? AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
            [self.schema_name, self.table_name],
        )
        if not keys:
            return False
        nullable = {column.name for column in self.describe() if column.nullable}
        return any(set(names) <= set(columns) and not set(names) & nullable for (names,) in keys)

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
        import duckdb  # loaded by _connect() already

        timer = threading.Timer(timeout_seconds, conn.interrupt) if timeout_seconds else None
        try:
            if timer:
                timer.start()
            cursor = conn.execute(sql, list(params))
            names = [column[0] for column in cursor.description or []]
            return names, cursor.fetchall()
        except duckdb.InterruptException as exc:
            raise ConnectorError(
                f"The query on {self.label} was cancelled after its time limit."
            ) from exc
        except duckdb.Error as exc:
            raise self._query_error(exc) from exc
        finally:
            if timer:
                timer.cancel()

    def arrow_batches(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        batch_rows: int,
        timeout_seconds: float | None = None,
    ) -> Iterator[Any]:
        # Here, not at the top: pyarrow (~40 MB with numpy) is for Arrow reads only; a
        # worker that runs checks, or a process that never streams, does without it.
        import duckdb
        import pyarrow as pa

        conn = self._connect()
        cursor = self._cursor = conn.cursor()
        timer = threading.Timer(timeout_seconds, cursor.interrupt) if timeout_seconds else None
        try:
            if timer:
                timer.start()
            reader = cursor.sql(sql, params=list(params)).to_arrow_reader(batch_rows)
            yield from reader
        except duckdb.InterruptException as exc:
            raise ConnectorError(
                f"The query on {self.label} was cancelled after its time limit."
            ) from exc
        except (duckdb.Error, pa.ArrowException) as exc:
            # Errors met while the reader streams (out of memory on a huge value, a
            # corrupt page) come through pyarrow, not as duckdb.Error.
            raise self._query_error(exc) from exc
        finally:
            if timer:
                timer.cancel()

    def interrupt(self) -> None:
        """Stop the statement arrow_batches is streaming (from another thread)."""
        cursor = getattr(self, "_cursor", None)
        if cursor is not None:
            cursor.interrupt()

    def _query_error(self, exc: Exception) -> ConnectorError:
        import duckdb  # loaded by _connect() already

        # A catalog error: the table (or its schema) is not in the database.
        missing = isinstance(exc, duckdb.CatalogException)
        error = RelationMissing if missing else ConnectorError
        return error(f"Query failed on {self.label}: {_first_line(exc)}")

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = self._connect()
        cur = conn.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._numbered = None


def _create_numbered_view(conn: duckdb.DuckDBPyConnection, file_path: str) -> bool:
    """NUMBERED_VIEW over a Parquet file; False when the file has a column of that name
    already (samples then read FILE_VIEW)."""
    import duckdb  # loaded by _open() already

    try:
        conn.read_parquet(file_path, file_row_number=True).create_view(NUMBERED_VIEW)
    except duckdb.Error:
        return False
    return True


@dataclass
class _FileInstance:
    conn: duckdb.DuckDBPyConnection
    numbered: bool | None


_shared_lock = threading.Lock()
_shared: OrderedDict[tuple, _FileInstance] = OrderedDict()
_shared_pid = os.getpid()


def _shared_file_instance(connector: DuckDBConnector) -> _FileInstance:
    """The process's DuckDB instance on the connector's file, created on first use.

    Creating one (an in-memory database, the file's views and metadata, the lock-down)
    costs 10-20 ms, as much as a check's own query on a small file; a worker running
    checks, monitors and reads of the same file keeps it instead. The key holds the
    file's inode, size and modification time, so a replaced file gets a new instance; its
    allowed_paths stay locked to that one file, so sharing it between the port's readers
    gives none of them more. Connectors use a cursor each (DuckDB's way to share an
    instance between threads); the instance's memory limit is shared by them. At most
    SHARED_FILE_INSTANCES are kept, least recently used first out; a forked child starts
    with none (an instance does not survive a fork)."""
    global _shared_pid
    path = connector.file_path
    try:
        stat = Path(path).stat()
    except OSError:
        raise RelationMissing(f"The file {connector.label} does not exist.") from None
    key = (path, connector.file_format, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _shared_lock:
        if _shared_pid != os.getpid():
            _shared.clear()
            _shared_pid = os.getpid()
        instance = _shared.get(key)
        if instance is not None:
            _shared.move_to_end(key)
            return instance
        for stale in [other for other in _shared if other[0] == path]:
            del _shared[stale]  # an older version of the file; closed once unused
        conn = connector._open(numbered=connector.file_format != "csv")
        instance = _FileInstance(conn=conn, numbered=connector._numbered)
        _shared[key] = instance
        while len(_shared) > SHARED_FILE_INSTANCES:
            _shared.popitem(last=False)
        return instance


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]
