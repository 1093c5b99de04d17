"""Write the generated tables where the demo's ports read them.

- A DuckDB file (embedded mode): built next to the target and renamed over it, so a
  reader never sees half a warehouse.
- A `warehouse` schema in the metadata PostgreSQL database: each table dropped, created
  and bulk-loaded with COPY in one transaction. The demo's data source reads it as
  `portal_demo_reader`, a role that may only SELECT in that schema (deploy/readonly-role.sql
  does the same for a real source).
- A `warehouse` database on a Spark Connect server (`DEMO_ENGINE=spark make run` starts a
  local one, products/connectors/spark_server.py): each table sent as Arrow through a
  writer session of its own and saved as a managed Parquet table, the build table last.
  The local server's catalog lives in memory, so a server started again has no tables and
  no build id: seeding writes them again.
- CSV and Parquet files in portal storage: written to a temporary name, then renamed;
  left alone when the bytes would not change.

Each warehouse records the build id (a hash of generator version, seed, scale, `as_of`
and table specs) it was built from, so that seeding again with the same inputs writes
nothing.
"""

import hashlib
import io
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.db import DatabaseError, connection, transaction

from products.connectors import port_file_path
from products.connectors.spark import SparkEndpoint, spark_session_open
from products.demo.catalog import (
    DUCKDB_SCHEMA,
    DUCKDB_TYPES,
    POSTGRES_SCHEMA,
    POSTGRES_TYPES,
    SPARK_SCHEMA,
    SPARK_TYPES,
    TableSpec,
)

# Bump when data generation changes, so existing warehouses are rebuilt.
GENERATOR_VERSION = "2"
BUILD_TABLE = "_portal_demo_build"
# The role the demo's PostgreSQL source connects as: LOGIN, read-only by default, SELECT on
# the warehouse schema only (none on the portal's own tables). Its password, if the
# server asks for one, is read from this environment variable (on trust auth none is).
READER_ROLE = "portal_demo_reader"
READER_PASSWORD_ENV = "PORTAL_DEMO_READER_PASSWORD"


def build_id(*, seed: int, rows_scale: float, as_of: datetime, specs: tuple[TableSpec, ...]) -> str:
    text = "|".join(
        [GENERATOR_VERSION, str(seed), repr(rows_scale), as_of.isoformat(), repr(specs)]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relation(schema: str, name: str) -> str:
    return f"{_q(schema)}.{_q(name)}"


def _create_sql(schema: str, spec: TableSpec, types: Mapping[str, str]) -> str:
    columns = ", ".join(
        f"{_q(c.name)} {types[c.type]}{' NOT NULL' if spec.physically_not_null(c) else ''}"
        for c in spec.columns
    )
    return f"CREATE TABLE {_relation(schema, spec.name)} ({columns})"


# --- DuckDB --------------------------------------------------------------------------


def duckdb_build_id(path: Path, specs: tuple[TableSpec, ...]) -> str | None:
    """The build id of the DuckDB warehouse at `path`, or None when it is missing,
    unreadable or lacks one of the tables."""
    if not path.is_file():
        return None
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            present = {
                row[0]
                for row in con.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                    [DUCKDB_SCHEMA],
                ).fetchall()
            }
            if BUILD_TABLE not in present or any(s.name not in present for s in specs):
                return None
            row = con.execute(
                f"SELECT build_id FROM {_relation(DUCKDB_SCHEMA, BUILD_TABLE)}"
            ).fetchone()
    except duckdb.Error:
        return None
    return row[0] if row else None


def duckdb_write(path: Path, tables: Mapping[TableSpec, pd.DataFrame], build: str) -> None:
    """Build the DuckDB warehouse next to `path`, then rename it over `path`: readers
    never see half a warehouse, and one that has the old file open keeps reading it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".building")
    for leftover in (tmp, Path(f"{tmp}.wal")):
        leftover.unlink(missing_ok=True)
    build_table = _relation(DUCKDB_SCHEMA, BUILD_TABLE)
    con = duckdb.connect(str(tmp))
    try:
        for spec, frame in tables.items():
            con.execute(_create_sql(DUCKDB_SCHEMA, spec, DUCKDB_TYPES))
            con.register("demo_frame", frame)
            relation = _relation(DUCKDB_SCHEMA, spec.name)
            con.execute(f"INSERT INTO {relation} SELECT * FROM demo_frame")
            con.unregister("demo_frame")
        con.execute(f"CREATE TABLE {build_table} (build_id VARCHAR, built_at TIMESTAMP)")
        con.execute(f"INSERT INTO {build_table} VALUES (?, now()::TIMESTAMP)", [build])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    Path(f"{path}.wal").unlink(missing_ok=True)  # a WAL of the old file must not replay
    os.replace(tmp, path)


# --- PostgreSQL ----------------------------------------------------------------------


def postgres_build_id(specs: tuple[TableSpec, ...]) -> str | None:
    """The build id of the `warehouse` schema in the metadata database, or None."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            [POSTGRES_SCHEMA],
        )
        present = {row[0] for row in cursor.fetchall()}
        if BUILD_TABLE not in present or any(s.name not in present for s in specs):
            return None
        cursor.execute(f"SELECT build_id FROM {_relation(POSTGRES_SCHEMA, BUILD_TABLE)}")
        row = cursor.fetchone()
    return row[0] if row else None


def _csv_for_copy(frame: pd.DataFrame, spec: TableSpec) -> str:
    """CSV text for COPY: ISO dates, UTC timestamps, t/f booleans, empty field = NULL."""
    out = {}
    for column in spec.columns:
        values = frame[column.name]
        if column.type == "timestamp":
            values = values.dt.strftime("%Y-%m-%d %H:%M:%S+00")
        elif column.type == "date":
            values = values.dt.strftime("%Y-%m-%d")
        elif column.type == "bool":
            values = values.map({True: "t", False: "f"})
        out[column.name] = values
    return pd.DataFrame(out).to_csv(index=False, header=False)


def postgres_write(tables: Mapping[TableSpec, pd.DataFrame], build: str) -> None:
    """(Re)create the tables in the `warehouse` schema of the metadata database and COPY
    the rows in, all in one transaction: readers see the old or the new warehouse."""
    build_table = _relation(POSTGRES_SCHEMA, BUILD_TABLE)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(POSTGRES_SCHEMA)}")
        for spec, frame in tables.items():
            relation = _relation(POSTGRES_SCHEMA, spec.name)
            cursor.execute(f"DROP TABLE IF EXISTS {relation}")
            cursor.execute(_create_sql(POSTGRES_SCHEMA, spec, POSTGRES_TYPES))
            names = ", ".join(_q(c.name) for c in spec.columns)
            with cursor.copy(f"COPY {relation} ({names}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(_csv_for_copy(frame, spec))
            cursor.execute(f"ANALYZE {relation}")
        cursor.execute(f"DROP TABLE IF EXISTS {build_table}")
        cursor.execute(f"CREATE TABLE {build_table} (build_id text, built_at timestamptz)")
        cursor.execute(f"INSERT INTO {build_table} VALUES (%s, now())", [build])


def postgres_reader_ensure() -> str | None:
    """Create (or bring up to date) the demo's read-only role: USAGE and SELECT on the
    `warehouse` schema (and its future tables), read-only transactions by default, nothing
    on the schemas of the portal's metadata. Returns the role's name, or None when the
    metadata user may not create roles (the source then keeps the metadata user)."""
    role = _q(READER_ROLE)
    schema = _q(POSTGRES_SCHEMA)
    password = os.environ.get(READER_PASSWORD_ENV, "")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", [READER_ROLE])
            if cursor.fetchone() is None:
                cursor.execute(
                    f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                    "NOREPLICATION NOBYPASSRLS"
                )
            if password:
                cursor.execute(f"ALTER ROLE {role} PASSWORD %s", [password])
            cursor.execute(f"ALTER ROLE {role} SET default_transaction_read_only = on")
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            cursor.execute(
                f"GRANT CONNECT ON DATABASE {_q(connection.settings_dict['NAME'])} TO {role}"
            )
            cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
            cursor.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
            cursor.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}"
            )
    except DatabaseError:
        # Not allowed to create roles (or another seeding created it at this moment: the
        # next seeding grants again).
        return None
    return READER_ROLE


# --- Spark (Spark Connect) ------------------------------------------------------------


def _spark_relation(name: str) -> str:
    return ".".join("`" + part.replace("`", "``") + "`" for part in (SPARK_SCHEMA, name))


def spark_build_id(endpoint: SparkEndpoint, specs: tuple[TableSpec, ...]) -> str | None:
    """The build id of the `warehouse` database on the Spark Connect server at `endpoint`,
    or None when the database, one of the tables or the build table is missing (a local
    server started again: its catalog was in memory)."""
    spark = spark_session_open(endpoint)
    try:
        if not spark.catalog.databaseExists(SPARK_SCHEMA):
            return None
        present = {table.name for table in spark.catalog.listTables(SPARK_SCHEMA)}
        if BUILD_TABLE not in present or any(s.name not in present for s in specs):
            return None
        row = spark.sql(f"SELECT build_id FROM {_spark_relation(BUILD_TABLE)}").first()
    finally:
        spark.stop()
    return row[0] if row else None


def spark_write(
    endpoint: SparkEndpoint, tables: Mapping[TableSpec, pd.DataFrame], build: str
) -> None:
    """(Re)create the tables in the `warehouse` database of the Spark Connect server at
    `endpoint`: each frame sent as Arrow, cast to the table's Spark types and saved as a
    managed table (Parquet files in the server's warehouse folder). Spark has no
    transaction across tables: the build table is written last, so a seeding cut short is
    written again next time."""
    spark = spark_session_open(endpoint)
    try:
        # A table's folder left by a server started before (its catalog forgotten) is
        # written over rather than refused.
        spark.conf.set("spark.sql.legacy.allowNonEmptyLocationInCTAS", "true")
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{SPARK_SCHEMA}`")
        spark.sql(f"DROP TABLE IF EXISTS {_spark_relation(BUILD_TABLE)}")
        for spec, frame in tables.items():
            # Casts written in SQL: no pyspark import here (only the client has it).
            columns = ", ".join(
                f"CAST(`{c.name}` AS {SPARK_TYPES[c.type]}) AS `{c.name}`" for c in spec.columns
            )
            # Arrow, not pandas: the client's pandas conversion lags pandas' releases.
            table = pa.Table.from_pandas(
                frame[[c.name for c in spec.columns]], preserve_index=False
            ).replace_schema_metadata(None)
            data = spark.createDataFrame(table)
            data.createOrReplaceTempView("demo_frame")
            relation = _spark_relation(spec.name)
            spark.sql(f"DROP TABLE IF EXISTS {relation}")
            spark.sql(f"CREATE TABLE {relation} USING parquet AS SELECT {columns} FROM demo_frame")
            spark.catalog.dropTempView("demo_frame")
        spark.sql(
            f"CREATE TABLE {_spark_relation(BUILD_TABLE)} USING parquet AS "
            "SELECT ? AS build_id, current_timestamp() AS built_at",
            args=[build],
        )
    finally:
        spark.stop()


# --- files in portal storage ---------------------------------------------------------


def _file_frame(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    frame = frame.copy()
    for column in spec.columns:
        if column.type == "date":
            frame[column.name] = frame[column.name].dt.date
    return frame


def file_bytes(frame: pd.DataFrame, spec: TableSpec, file_format: str) -> bytes:
    frame = _file_frame(frame, spec)
    if file_format == "parquet":
        buffer = io.BytesIO()
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        pq.write_table(table, buffer, compression="zstd")
        return buffer.getvalue()
    if file_format == "csv":
        return frame.to_csv(index=False, date_format="%Y-%m-%d %H:%M:%S").encode()
    raise ValueError(f"Unknown file format {file_format!r}")


def file_write(relative_path: str, data: bytes) -> bool:
    """Write a file in portal storage unless it already holds these bytes. Returns whether
    it wrote."""
    target = port_file_path(relative_path)
    if target.is_file() and target.read_bytes() == data:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return True
