"""Table destinations: PostgreSQL (psycopg 3), MySQL / MariaDB (PyMySQL) and DuckDB.

Every batch is one transaction, by the sync's key (the destination fields `key_fields`,
which need a primary key or unique index on exactly them: check() says so):

    upsert   insert, or update the existing row: re-sending a batch changes nothing more
    insert   a record whose key already exists is rejected "already exists" (the row there
             is left as it is: an insert sync never overwrites what someone else wrote)
    update   a record whose key is missing is rejected "not found" (no row is created)
    delete   rows with the records' keys are deleted; a key already gone is acknowledged

PostgreSQL: COPY of the batch into a temporary staging table, then one set-based statement
(INSERT ... ON CONFLICT (key) DO UPDATE, UPDATE ... FROM, DELETE ... USING). DuckDB: the same
statements over a staging table filled by executemany. MySQL / MariaDB: executemany of
INSERT ... ON DUPLICATE KEY UPDATE / UPDATE / DELETE (strict SQL mode for the session, so a
bad value is an error, not a warning and a silent change).

When the database refuses the batch (a constraint, a value of the wrong type), the batch is
rolled back and its records are written again one by one, each under a savepoint (DuckDB,
which has none: each in its own transaction), so the good records are acknowledged and each
bad one is rejected with the database's message. A lost connection is DestinationUnavailable
(nothing acknowledged); a missing table or column is a DestinationError naming it.

Identifiers are quoted (PostgreSQL and DuckDB "...", MySQL `...`); values are bound (COPY
rows for PostgreSQL). The password comes from os.environ[destination.secret_env] when named.
"""

from __future__ import annotations

import json
import operator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pymysql
from psycopg import errors as pg_errors

from products.connectors.base import Connector
from products.connectors.postgres import UNIQUE_KEYS_SQL, PostgresConnector
from sharing.models import SyncDestination
from sharing.syncs.destinations.base import (
    BatchOutcome,
    DestinationError,
    DestinationUnavailable,
    OutgoingBatch,
    destination_secret,
    reason_short,
)

CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_MS = 10 * 60_000
APPLICATION_NAME = "data-product-portal-sync"
SQL_BATCH_ROWS = 20_000  # records per send(): one transaction each
ROW_COLUMN = "__portal_sync_row"  # the record's index in the staging table
STAGE_TABLE = "__portal_sync_stage"
ALREADY_EXISTS = "already exists"
NOT_FOUND = "not found"
# MySQL client errors that mean the server is gone, not that a record is bad.
MYSQL_CONNECTION_ERRORS = {1040, 1045, 1049, 1053, 2002, 2003, 2005, 2006, 2013, 2055}
MYSQL_MISSING_ERRORS = {1146: "table", 1054: "column"}


# Values psycopg writes into COPY text exactly as _text would (the rest go through _text).
COPY_AS_IS = frozenset({str, int, float, type(None)})


def _text(value: Any) -> str | None:
    """A value as PostgreSQL's text input (COPY and bound alike): the column's type parses it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _native(value: Any) -> Any:
    """A value for DuckDB and MySQL parameters: JSON-able scalars as they are, objects as JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


def _rows(records: list[dict], columns: list[str]):
    """Each record's values in `columns` order, as tuples (None for a field it lacks)."""
    getter = operator.itemgetter(*columns)
    for record in records:
        try:
            values = getter(record)
        except KeyError:
            values = tuple(record.get(name) for name in columns)
        else:
            if len(columns) == 1:
                values = (values,)
        yield values


def _with_row_numbers(batch):
    """An Arrow batch with each row's index first (ROW_COLUMN), as the stage has it."""
    # Lazy: pyarrow only in the processes that read Arrow (a run, not a starting worker).
    import pyarrow as pa

    rows = pa.array(range(batch.num_rows), pa.int32())
    return pa.RecordBatch.from_arrays(
        [rows, *batch.columns], schema=pa.schema([pa.field(ROW_COLUMN, pa.int32()), *batch.schema])
    )


def _columns_of(batch: OutgoingBatch) -> list[str]:
    columns: dict[str, None] = {}
    for record in batch.records:
        columns.update(dict.fromkeys(record))
    return list(columns)


class _TableWriter:
    """What the three engines share: key checks, batching, the shape of messages."""

    engine = ""
    batch_size = SQL_BATCH_ROWS
    # The engine's timestamp types without a zone (information_schema's data_type, lower
    # case): each reads text with an offset wrongly (drops it, or refuses it).
    naive_timestamp_types: frozenset[str] = frozenset()
    plain = staticmethod(lambda value: value)  # a record's value as the driver binds it

    def __init__(self, destination: SyncDestination, *, key_fields: list[str]) -> None:
        self.destination = destination
        self.key_fields = list(key_fields)
        self._fields: list[str] | None = None
        self._timestamp_fields: set[str] | None = None  # of naive_timestamp_types

    def _fields_typed(self, rows) -> list[str]:
        """The field names of (name, data_type) rows, noting which take naive timestamps."""
        self._timestamp_fields = {
            name for name, data_type in rows if data_type.lower() in self.naive_timestamp_types
        }
        return [name for name, _ in rows]

    def _timestamp_fields_read(self) -> set[str]:
        if self._timestamp_fields is None:
            self._read_fields()
        return self._timestamp_fields

    def _value(self, name: str, value: Any) -> Any:
        """A record's value for the driver (`plain`); a timestamp's ISO 8601 text as its
        UTC time where the field has no zone (utc_timestamp_text)."""
        if isinstance(value, str) and name in (self._timestamp_fields or ()):
            return utc_timestamp_text(value)
        return self.plain(value)

    @property
    def relation_name(self) -> str:
        return f"{self.schema}.{self.destination.table_name}"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _missing_table(self) -> DestinationError:
        return DestinationError(
            f"The table {self.relation_name} does not exist on destination "
            f"{self.destination.name!r} (or its user may not see it)."
        )

    def fields(self) -> list[str]:
        if self._fields is None:
            self._fields = self._read_fields()
        return list(self._fields)

    def check(self) -> None:
        fields = self._read_fields()
        if not fields:
            raise self._missing_table()
        self._fields = fields
        missing = [name for name in self.key_fields if name not in fields]
        if missing:
            raise DestinationError(
                f"The table {self.relation_name} has no field {missing[0]!r} (a key field). "
                f"Its fields: {', '.join(fields)}."
            )
        if self.key_fields and set(self.key_fields) not in self._unique_column_sets():
            raise DestinationError(
                f"The table {self.relation_name} has no primary key or unique index on "
                f"({', '.join(self.key_fields)}): writing by key needs one."
            )

    def send(self, batch: OutgoingBatch) -> BatchOutcome:
        if not batch.records:
            return BatchOutcome()
        if not self.key_fields:
            raise DestinationError("A table destination needs the sync's key fields.")
        outcome = BatchOutcome()
        for start in range(0, len(batch.records), self.batch_size):
            part = OutgoingBatch(
                operation=batch.operation,
                keys=batch.keys[start : start + self.batch_size],
                records=batch.records[start : start + self.batch_size],
                idempotency_keys=batch.idempotency_keys[start : start + self.batch_size],
            )
            part_outcome = self._send_part(part, _columns_of(part))
            outcome.acked.extend(start + index for index in part_outcome.acked)
            outcome.rejected.update(
                {start + index: reason for index, reason in part_outcome.rejected.items()}
            )
        return outcome

    def _value_columns(self, columns: list[str]) -> list[str]:
        return [name for name in columns if name not in self.key_fields]

    @staticmethod
    def _outcome(count: int, rejected: dict[int, str]) -> BatchOutcome:
        return BatchOutcome(
            acked=[index for index in range(count) if index not in rejected], rejected=rejected
        )


# --- PostgreSQL and DuckDB: a staging table, then set-based statements ----------------------


class _StagedWriter(_TableWriter):
    quote = staticmethod(Connector.quote_ident)

    @property
    def target(self) -> str:
        return f"{self.quote(self.schema)}.{self.quote(self.destination.table_name)}"

    def _key_match(self, left: str, right: str) -> str:
        return " AND ".join(
            f"{left}.{self.quote(name)} = {right}.{self.quote(name)}" for name in self.key_fields
        )

    def _staged_statements(self, operation: str, columns: list[str]) -> tuple[str, str | None]:
        """(the statement writing the stage into the target, the one returning the rows it
        found: the staged records whose key the table already holds)."""
        q, target, stage = self.quote, self.target, self.quote(STAGE_TABLE)
        names = ", ".join(q(name) for name in columns)
        keys = ", ".join(q(name) for name in self.key_fields)
        values = self._value_columns(columns)
        row = q(ROW_COLUMN)
        found = (
            f"SELECT s.{row} FROM {stage} AS s JOIN {target} AS t ON {self._key_match('t', 's')}"
        )
        if operation == "upsert":
            action = (
                "DO UPDATE SET " + ", ".join(f"{q(name)} = EXCLUDED.{q(name)}" for name in values)
                if values
                else "DO NOTHING"
            )
            return (
                f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} "
                f"ON CONFLICT ({keys}) {action}",
                None,
            )
        if operation == "insert":
            return (
                f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} "
                f"ON CONFLICT ({keys}) DO NOTHING",
                found,
            )
        if operation == "update":
            if not values:
                return ("", found)
            sets = ", ".join(f"{q(name)} = s.{q(name)}" for name in values)
            return (
                f"UPDATE {target} AS t SET {sets} FROM {stage} AS s "
                f"WHERE {self._key_match('t', 's')}",
                found,
            )
        return (
            f"DELETE FROM {target} AS t USING {stage} AS s WHERE {self._key_match('t', 's')}",
            None,
        )

    def _single_statement(self, operation: str, columns: list[str], mark: str) -> str:
        """One record's statement, `mark` the placeholder (%s or ?); for insert and update
        it returns a row when the record was written."""
        q, target = self.quote, self.target
        names = ", ".join(q(name) for name in columns)
        keys = ", ".join(q(name) for name in self.key_fields)
        marks = ", ".join([mark] * len(columns))
        values = self._value_columns(columns)
        where = " AND ".join(f"{q(name)} = {mark}" for name in self.key_fields)
        if operation == "upsert":
            action = (
                "DO UPDATE SET " + ", ".join(f"{q(name)} = EXCLUDED.{q(name)}" for name in values)
                if values
                else "DO NOTHING"
            )
            return f"INSERT INTO {target} ({names}) VALUES ({marks}) ON CONFLICT ({keys}) {action}"
        if operation == "insert":
            return (
                f"INSERT INTO {target} ({names}) VALUES ({marks}) ON CONFLICT ({keys}) "
                f"DO NOTHING RETURNING 1"
            )
        if operation == "update":
            if not values:
                return f"SELECT 1 FROM {target} WHERE {where}"
            sets = ", ".join(f"{q(name)} = {mark}" for name in values)
            return f"UPDATE {target} SET {sets} WHERE {where} RETURNING 1"
        return f"DELETE FROM {target} WHERE {where}"

    def _single_params(self, operation: str, columns: list[str], record: dict, convert) -> list:
        if operation == "update":
            ordered = self._value_columns(columns) + self.key_fields
        elif operation == "delete":
            ordered = self.key_fields
        else:
            ordered = columns
        return [convert(name, record.get(name)) for name in ordered]

    @staticmethod
    def _not_written(operation: str, count: int, found: set[int]) -> dict[int, str]:
        """The records an insert or update leaves alone, from the indexes whose key the
        table held before: inserts of those, updates of the others."""
        if operation == "insert":
            return dict.fromkeys(sorted(found), ALREADY_EXISTS)
        return {index: NOT_FOUND for index in range(count) if index not in found}

    @staticmethod
    def _found_reason(operation: str) -> str | None:
        return {"insert": ALREADY_EXISTS, "update": NOT_FOUND}.get(operation)


class PostgresWriter(_StagedWriter):
    engine = "postgresql"
    # PostgreSQL keeps the wall time of text with an offset and drops the offset.
    naive_timestamp_types = frozenset({"timestamp without time zone"})
    plain = staticmethod(_text)
    quote = staticmethod(PostgresConnector.quote_ident)  # a field holding % (bound values)

    def __init__(self, destination: SyncDestination, *, key_fields: list[str]) -> None:
        super().__init__(destination, key_fields=key_fields)
        self.schema = destination.schema_name or "public"
        self._conn: psycopg.Connection | None = None

    def _connect(self) -> psycopg.Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        destination = self.destination
        info = {
            "host": destination.host or "localhost",
            "port": destination.port or 5432,
            "dbname": destination.database,
            "user": destination.username or None,
            "password": destination_secret(destination),
        }
        try:
            self._conn = psycopg.connect(
                **{key: value for key, value in info.items() if value is not None},
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name=APPLICATION_NAME,
                # UTC, as the portal and the Spark session: a timestamp without an offset
                # (a Spark key's text, a naive value) means the same instant whatever
                # zone the destination's server or role defaults to.
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c TimeZone=UTC",
                autocommit=True,  # each batch opens its own transaction
            )
        except psycopg.Error as exc:
            raise DestinationUnavailable(
                f"Destination {destination.name!r} could not be reached.",
                technical=f"{info['host']}:{info['port']}/{destination.database}: "
                f"{_pg_reason(exc)}",
            ) from None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _read_fields(self) -> list[str]:
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                [self.schema, self.destination.table_name],
            ).fetchall()
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from None
        return self._fields_typed(rows)

    def _unique_column_sets(self) -> list[set[str]]:
        rows = self._connect().execute(UNIQUE_KEYS_SQL, [self.target]).fetchall()
        return [set(keys) for keys, _not_null in rows]

    def _unavailable(self, exc: Exception) -> DestinationUnavailable:
        self.close()
        return DestinationUnavailable(
            f"Destination {self.destination.name!r} could not be reached.",
            technical=_pg_reason(exc),
        )

    def _config_error(self, exc: psycopg.Error) -> DestinationError | None:
        """A refusal that is the destination's set-up, not a record's value."""
        if isinstance(exc, pg_errors.UndefinedTable):
            return self._missing_table()
        if isinstance(exc, pg_errors.UndefinedColumn):
            return DestinationError(
                f"The table {self.relation_name} lacks a field the sync sends: {_pg_reason(exc)}",
                technical=_pg_reason(exc),
            )
        if isinstance(exc, pg_errors.InvalidColumnReference):  # no unique index for ON CONFLICT
            return DestinationError(
                f"The table {self.relation_name} has no primary key or unique index on "
                f"({', '.join(self.key_fields)}): writing by key needs one.",
                technical=_pg_reason(exc),
            )
        if isinstance(exc, pg_errors.InsufficientPrivilege):
            return DestinationError(
                f"The destination's user may not write to {self.relation_name}.",
                technical=_pg_reason(exc),
            )
        return None

    def _send_part(self, batch: OutgoingBatch, columns: list[str]) -> BatchOutcome:
        self._timestamp_fields_read()  # before any write (_value)
        conn = self._connect()
        outcome = self._staged_or_none(lambda: self._send_staged(conn, batch, columns))
        if outcome is not None:
            return outcome
        try:
            return self._send_one_by_one(conn, batch, columns)
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from None

    def _staged_or_none(self, write) -> BatchOutcome | None:
        """`write()`, a staged batch; None when the table refused a record of it (the caller
        writes them one by one). A lost connection or a missing table or field raises."""
        try:
            return write()
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from None
        except psycopg.Error as exc:
            config = self._config_error(exc)
            if config is not None:
                raise config from None
        return None

    def _send_staged(self, conn, batch: OutgoingBatch, columns: list[str]) -> BatchOutcome:
        naive = self._timestamp_fields_read()
        stamped = [i for i, name in enumerate(columns) if name in naive]

        def fill(cur, copy_into: str) -> None:
            with cur.copy(f"COPY {copy_into} FROM STDIN") as copy:
                for index, values in enumerate(_rows(batch.records, columns)):
                    if not COPY_AS_IS.issuperset(map(type, values)):  # C-speed type check
                        values = tuple(map(_text, values))
                    if stamped:
                        values = list(values)
                        for i in stamped:
                            if isinstance(values[i], str):
                                values[i] = utc_timestamp_text(values[i])
                    copy.write_row((index, *values))

        return self._staged(conn, batch.operation, columns, len(batch.records), fill)

    def send_columns(self, operation: str, table) -> BatchOutcome | None:
        """A batch given as Arrow columns named by destination field (a sync run's fast
        path: no value becomes a Python object): their CSV copied into the stage, then the
        same statements as send(). None when this path cannot take it (a column type its
        CSV does not carry, or a record the table refused): send() then writes the
        records, one by one where one is refused."""
        from sharing.serving.arrow_values import copy_csv

        columns = table.schema.names
        data = copy_csv(_with_row_numbers(table))
        if data is None:
            return None

        def fill(cur, copy_into: str) -> None:
            with cur.copy(f"COPY {copy_into} FROM STDIN (FORMAT csv)") as copy:
                copy.write(data)

        conn = self._connect()
        return self._staged_or_none(
            lambda: self._staged(conn, operation, columns, table.num_rows, fill)
        )

    def _staged(self, conn, operation: str, columns: list[str], count: int, fill) -> BatchOutcome:
        """One transaction: the stage created and filled (`fill`), the records the table
        leaves alone found, the set-based statement run."""
        q = self.quote
        names = ", ".join(q(name) for name in columns)
        write, found_sql = self._staged_statements(operation, columns)
        rejected: dict[int, str] = {}
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE {q(STAGE_TABLE)} ON COMMIT DROP AS "
                f"SELECT 0::integer AS {q(ROW_COLUMN)}, {names} FROM {self.target} WITH NO DATA"
            )
            fill(cur, f"{q(STAGE_TABLE)} ({q(ROW_COLUMN)}, {names})")
            if found_sql:
                found = {row[0] for row in cur.execute(found_sql)}
                rejected = self._not_written(operation, count, found)
            if write:
                cur.execute(write)
        return self._outcome(count, rejected)

    def _send_one_by_one(self, conn, batch: OutgoingBatch, columns: list[str]) -> BatchOutcome:
        statement = self._single_statement(batch.operation, columns, "%s")
        expects_row = batch.operation in ("insert", "update")
        rejected: dict[int, str] = {}
        with conn.transaction(), conn.cursor() as cur:
            for index, record in enumerate(batch.records):
                params = self._single_params(batch.operation, columns, record, self._value)
                try:
                    with conn.transaction():  # a savepoint per record
                        cur.execute(statement, params)
                        if expects_row and cur.fetchone() is None:
                            rejected[index] = self._found_reason(batch.operation)
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as exc:
                    config = self._config_error(exc)
                    if config is not None:
                        raise config from None
                    rejected[index] = reason_short(_pg_reason(exc))
        return self._outcome(len(batch.records), rejected)


def _pg_reason(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag else None
    if not primary:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    detail = getattr(diag, "message_detail", None)
    return f"{primary} ({detail})" if detail else primary


class DuckDBWriter(_StagedWriter):
    engine = "duckdb"
    # DuckDB drops an offset into these (TIMESTAMP WITH TIME ZONE keeps the instant).
    naive_timestamp_types = frozenset(
        {"timestamp", "datetime", "timestamp_s", "timestamp_ms", "timestamp_ns"}
    )
    plain = staticmethod(_native)

    def __init__(self, destination: SyncDestination, *, key_fields: list[str]) -> None:
        super().__init__(destination, key_fields=key_fields)
        self.schema = destination.schema_name or "main"
        self._conn = None

    def _connect(self):
        if self._conn is not None:
            return self._conn
        # Lazy: DuckDB only in the processes that write to a DuckDB destination.
        import duckdb

        self._duckdb = duckdb
        try:
            self._conn = duckdb.connect(self.destination.path)
            # A timestamptz written into a TIMESTAMP column is its UTC time, as on the
            # other destinations, not the worker machine's local time.
            self._conn.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            raise DestinationUnavailable(
                f"Destination {self.destination.name!r} could not be opened.",
                technical=f"{self.destination.path}: {exc}",
            ) from None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _read_fields(self) -> list[str]:
        rows = (
            self._connect()
            .execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [self.schema, self.destination.table_name],
            )
            .fetchall()
        )
        return self._fields_typed(rows)

    def _unique_column_sets(self) -> list[set[str]]:
        rows = (
            self._connect()
            .execute(
                "SELECT constraint_column_names FROM duckdb_constraints() "
                "WHERE schema_name = ? AND table_name = ? "
                "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
                [self.schema, self.destination.table_name],
            )
            .fetchall()
        )
        return [set(row[0]) for row in rows]

    def _send_part(self, batch: OutgoingBatch, columns: list[str]) -> BatchOutcome:
        self._timestamp_fields_read()  # before any write (_value)
        conn = self._connect()
        outcome = self._staged_or_none(lambda: self._send_staged(conn, batch, columns))
        if outcome is not None:
            return outcome
        return self._send_one_by_one(conn, batch, columns)

    def _staged_or_none(self, write) -> BatchOutcome | None:
        """`write()`, a staged batch; None when the table refused a record of it (the caller
        writes them one by one). A missing table or field raises: the destination's set-up,
        not a record's value."""
        try:
            return write()
        except (self._duckdb.CatalogException, self._duckdb.BinderException) as exc:
            raise DestinationError(
                f"Destination {self.destination.name!r}: {str(exc).splitlines()[0]}",
                technical=str(exc),
            ) from None
        except self._duckdb.Error:
            return None

    def _send_staged(self, conn, batch: OutgoingBatch, columns: list[str]) -> BatchOutcome:
        def fill(stage: str) -> None:
            marks = ", ".join(["?"] * (len(columns) + 1))
            conn.executemany(
                f"INSERT INTO {stage} VALUES ({marks})",
                [
                    [index, *(self._value(name, record.get(name)) for name in columns)]
                    for index, record in enumerate(batch.records)
                ],
            )

        return self._staged(conn, batch.operation, columns, len(batch.records), fill)

    def send_columns(self, operation: str, table) -> BatchOutcome | None:
        """A batch given as Arrow columns named by destination field (a sync run's fast
        path): DuckDB reads them as they are into the stage. None when a record is refused
        (send() then writes them one by one)."""
        from sharing.serving.arrow_values import text_numerics

        columns = table.schema.names
        staged = _with_row_numbers(text_numerics(table))
        conn = self._connect()
        view = "__portal_sync_arrow"

        def fill(stage: str) -> None:
            conn.register(view, staged)
            try:
                conn.execute(f"INSERT INTO {stage} SELECT * FROM {self.quote(view)}")
            finally:
                conn.unregister(view)

        return self._staged_or_none(
            lambda: self._staged(conn, operation, columns, table.num_rows, fill)
        )

    def _staged(self, conn, operation: str, columns: list[str], count: int, fill) -> BatchOutcome:
        q = self.quote
        names = ", ".join(q(name) for name in columns)
        write, found_sql = self._staged_statements(operation, columns)
        rejected: dict[int, str] = {}
        conn.begin()
        try:
            conn.execute(
                f"CREATE OR REPLACE TEMP TABLE {q(STAGE_TABLE)} AS "
                f"SELECT 0::INTEGER AS {q(ROW_COLUMN)}, {names} FROM {self.target} LIMIT 0"
            )
            fill(q(STAGE_TABLE))
            if found_sql:
                found = {row[0] for row in conn.execute(found_sql).fetchall()}
                rejected = self._not_written(operation, count, found)
            if write:
                conn.execute(write)
            conn.execute(f"DROP TABLE {q(STAGE_TABLE)}")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return self._outcome(count, rejected)

    def _send_one_by_one(self, conn, batch: OutgoingBatch, columns: list[str]) -> BatchOutcome:
        # DuckDB has no savepoints: each record in its own transaction.
        statement = self._single_statement(batch.operation, columns, "?")
        expects_row = batch.operation in ("insert", "update")
        rejected: dict[int, str] = {}
        for index, record in enumerate(batch.records):
            params = self._single_params(batch.operation, columns, record, self._value)
            conn.begin()
            try:
                result = conn.execute(statement, params)
                if expects_row and result.fetchone() is None:
                    rejected[index] = self._found_reason(batch.operation)
                conn.commit()
            except self._duckdb.Error as exc:
                conn.rollback()
                rejected[index] = reason_short(str(exc).splitlines()[0])
        return self._outcome(len(batch.records), rejected)


# --- MySQL / MariaDB ------------------------------------------------------------------------


def mysql_quote(name: str) -> str:
    if "\x00" in name:
        raise ValueError("identifier contains a NUL byte")
    return "`" + name.replace("`", "``") + "`"


def mysql_bound_quote(name: str) -> str:
    """mysql_quote for a statement run with parameters: PyMySQL formats such a statement
    with Python's %, so a `%` of a name is written `%%` (every statement of the writer
    that names a table or field binds values)."""
    return mysql_quote(name).replace("%", "%%")


class MySQLWriter(_TableWriter):
    engine = "mysql"
    # MySQL refuses text with an offset ('2026-12-01T10:00:00+02:00', how a timestamptz
    # travels) for these.
    naive_timestamp_types = frozenset({"datetime", "timestamp"})
    plain = staticmethod(_native)
    quote = staticmethod(mysql_bound_quote)

    def __init__(self, destination: SyncDestination, *, key_fields: list[str]) -> None:
        super().__init__(destination, key_fields=key_fields)
        self.schema = destination.schema_name or destination.database
        self._conn: pymysql.connections.Connection | None = None

    @property
    def target(self) -> str:
        return f"{self.quote(self.schema)}.{self.quote(self.destination.table_name)}"

    def _connect(self):
        if self._conn is not None and self._conn.open:
            return self._conn
        destination = self.destination
        try:
            self._conn = pymysql.connect(
                host=destination.host or "localhost",
                port=destination.port or 3306,
                user=destination.username or "root",
                password=destination_secret(destination) or "",
                database=destination.database,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                autocommit=False,
                charset="utf8mb4",
            )
            with self._conn.cursor() as cur:
                # A bad value is an error, never a warning and a silently changed value.
                cur.execute(
                    "SET SESSION sql_mode = CONCAT_WS(',', @@sql_mode, 'STRICT_ALL_TABLES')"
                )
                # TIMESTAMP columns read a value without an offset in the session's zone:
                # UTC, as on PostgreSQL destinations.
                cur.execute("SET SESSION time_zone = '+00:00'")
        except pymysql.MySQLError as exc:
            raise DestinationUnavailable(
                f"Destination {destination.name!r} could not be reached.",
                technical=f"{destination.host}:{destination.port or 3306}/"
                f"{destination.database}: {_mysql_reason(exc)}",
            ) from None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except pymysql.MySQLError:
                pass  # already gone
            self._conn = None

    def _query(self, sql: str, params: list) -> list[tuple]:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                rows = list(cur.fetchall())
            conn.rollback()  # end the read's transaction
        except pymysql.MySQLError as exc:
            raise self._classified(exc) from None
        return rows

    def _read_fields(self) -> list[str]:
        rows = self._query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [self.schema, self.destination.table_name],
        )
        return self._fields_typed(rows)

    def _unique_column_sets(self) -> list[set[str]]:
        rows = self._query(
            "SELECT index_name, column_name FROM information_schema.statistics "
            "WHERE table_schema = %s AND table_name = %s AND non_unique = 0",
            [self.schema, self.destination.table_name],
        )
        sets: dict[str, set[str]] = {}
        for index_name, column in rows:
            sets.setdefault(index_name, set()).add(column)
        return list(sets.values())

    def _classified(self, exc: pymysql.MySQLError) -> DestinationError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in MYSQL_CONNECTION_ERRORS or isinstance(exc, pymysql.err.InterfaceError):
            self.close()
            return DestinationUnavailable(
                f"Destination {self.destination.name!r} could not be reached.",
                technical=_mysql_reason(exc),
            )
        if code == 1146:
            return self._missing_table()
        if code == 1054:
            return DestinationError(
                f"The table {self.relation_name} lacks a field the sync sends: "
                f"{_mysql_reason(exc)}",
                technical=_mysql_reason(exc),
            )
        return DestinationError(
            f"Destination {self.destination.name!r} refused the batch.",
            technical=_mysql_reason(exc),
        )

    def _is_record_error(self, exc: pymysql.MySQLError) -> bool:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        return (
            isinstance(exc, pymysql.err.IntegrityError | pymysql.err.DataError)
            or (
                isinstance(exc, pymysql.err.OperationalError)
                and code not in MYSQL_CONNECTION_ERRORS
            )
        ) and code not in MYSQL_MISSING_ERRORS

    def _existing(self, cur, batch: OutgoingBatch) -> set[int]:
        """Indexes of the batch's records whose key the table already holds."""
        q = self.quote
        keys = ", ".join(q(name) for name in self.key_fields)
        wanted: dict[tuple, list[int]] = {}
        for index, record in enumerate(batch.records):
            key = tuple(str(self._value(name, record.get(name))) for name in self.key_fields)
            wanted.setdefault(key, []).append(index)
        found: set[int] = set()
        tuples = list(wanted)
        for start in range(0, len(tuples), 1000):
            chunk = tuples[start : start + 1000]
            marks = ", ".join(["(" + ", ".join(["%s"] * len(self.key_fields)) + ")"] * len(chunk))
            cur.execute(
                f"SELECT {keys} FROM {self.target} WHERE ({keys}) IN ({marks})",
                [value for key in chunk for value in key],
            )
            for row in cur.fetchall():
                found.update(wanted.get(tuple(str(value) for value in row), []))
        return found

    def _statement(self, operation: str, columns: list[str]) -> str:
        q, target = self.quote, self.target
        names = ", ".join(q(name) for name in columns)
        marks = ", ".join(["%s"] * len(columns))
        values = self._value_columns(columns)
        where = " AND ".join(f"{q(name)} = %s" for name in self.key_fields)
        if operation == "upsert":
            update = ", ".join(
                f"{q(name)} = VALUES({q(name)})" for name in values or self.key_fields
            )
            return (
                f"INSERT INTO {target} ({names}) VALUES ({marks}) ON DUPLICATE KEY UPDATE {update}"
            )
        if operation == "insert":
            return f"INSERT INTO {target} ({names}) VALUES ({marks})"
        if operation == "update":
            sets = ", ".join(f"{q(name)} = %s" for name in values or self.key_fields)
            return f"UPDATE {target} SET {sets} WHERE {where}"
        return f"DELETE FROM {target} WHERE {where}"

    def _params(self, operation: str, columns: list[str], record: dict) -> list:
        if operation == "update":
            ordered = (self._value_columns(columns) or self.key_fields) + self.key_fields
        elif operation == "delete":
            ordered = self.key_fields
        else:
            ordered = columns
        return [self._value(name, record.get(name)) for name in ordered]

    def _send_part(self, batch: OutgoingBatch, columns: list[str]) -> BatchOutcome:
        self._timestamp_fields_read()  # before any write (_value)
        conn = self._connect()
        operation = batch.operation
        statement = self._statement(operation, columns)
        try:
            with conn.cursor() as cur:
                rejected: dict[int, str] = {}
                if operation in ("insert", "update"):
                    existing = self._existing(cur, batch)
                    rejected = (
                        dict.fromkeys(existing, ALREADY_EXISTS)
                        if operation == "insert"
                        else {
                            index: NOT_FOUND
                            for index in range(len(batch.records))
                            if index not in existing
                        }
                    )
                chosen = [index for index in range(len(batch.records)) if index not in rejected]
                try:
                    if chosen:
                        cur.executemany(
                            statement,
                            [self._params(operation, columns, batch.records[i]) for i in chosen],
                        )
                    conn.commit()
                    return self._outcome(len(batch.records), rejected)
                except pymysql.MySQLError as exc:
                    conn.rollback()
                    if not self._is_record_error(exc):
                        raise
                # One by one, each under a savepoint.
                for index in chosen:
                    cur.execute("SAVEPOINT portal_sync_record")
                    try:
                        cur.execute(
                            statement, self._params(operation, columns, batch.records[index])
                        )
                    except pymysql.MySQLError as exc:
                        if not self._is_record_error(exc):
                            raise
                        cur.execute("ROLLBACK TO SAVEPOINT portal_sync_record")
                        rejected[index] = reason_short(_mysql_reason(exc))
                    else:
                        cur.execute("RELEASE SAVEPOINT portal_sync_record")
                conn.commit()
                return self._outcome(len(batch.records), rejected)
        except pymysql.MySQLError as exc:
            error = self._classified(exc)
            if self._conn is not None:
                try:
                    self._conn.rollback()
                except pymysql.MySQLError:
                    self.close()
            raise error from None


def utc_timestamp_text(value: str) -> str:
    """ISO 8601 timestamp text as a column without a zone reads it: with an offset, the
    UTC instant (the writers' sessions are UTC); without one, as it is with a space for
    the `T`. Text that is no timestamp is left for the database to refuse."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(" ")


def _mysql_reason(exc: Exception) -> str:
    if len(exc.args) >= 2:
        return str(exc.args[1])
    return str(exc)
