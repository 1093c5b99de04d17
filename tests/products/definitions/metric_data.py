"""Orders for the metric tests, the same rows as a PostgreSQL table and a Parquet file,
and hand-written SQL run directly on each engine (not through the portal) to compare the
metric's values with.

Amounts are multiples of 0.25 (exact in binary), so a sum is the same in any order.
Two orders sit on the January/February boundary in UTC (23:30 and 00:30), where a
month cut in another time zone would differ.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from products.catalog.services.schema_refresh import schema_apply_columns
from products.choices import Classification, SourceKind
from products.connectors import connector_for_port
from tests.factories import DataSourceFactory, FilePortFactory, OutputPortFactory, ProductFactory

PG_SCHEMA = "metrics_test"
PARQUET_PATH = "metrics/orders.parquet"
CHANNELS = ("web", "store", "phone")
COUNTRIES = ("BE", "NL", "FR", "DE")
START = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)


def _rows() -> list[tuple]:
    rows = []
    for i in range(1, 241):
        ordered_at = START + timedelta(hours=9 * i + (i % 5))
        rows.append(_row(i, ordered_at))
    rows.append(_row(241, datetime(2025, 1, 31, 23, 30, tzinfo=UTC)))
    rows.append(_row(242, datetime(2025, 2, 1, 0, 30, tzinfo=UTC)))
    return rows


def _row(i: int, ordered_at: datetime) -> tuple:
    channel = CHANNELS[i % 3]
    return (
        i,  # order_id
        ordered_at,
        ordered_at.date(),  # order_day
        channel,
        COUNTRIES[i % 4],
        i % 37,  # customer_id
        f"c{i % 37}@example.com",  # email (confidential)
        "cancelled" if i % 9 == 0 else "completed",
        (i * 37 % 400) / 4 + 1,  # amount
        1 + i % 5,  # quantity
        None if channel == "phone" else (i % 3) * 0.5,  # discount: none by phone
    )


ROWS = _rows()
COLUMNS = (
    "order_id",
    "ordered_at",
    "order_day",
    "channel",
    "country",
    "customer_id",
    "email",
    "status",
    "amount",
    "quantity",
    "discount",
)
PG_TYPES = (
    "bigint",
    "timestamptz",
    "date",
    "text",
    "text",
    "bigint",
    "text",
    "text",
    "numeric(10,2)",
    "integer",
    "double precision",
)
ARROW_TYPES = (
    pa.int64(),
    pa.timestamp("us", tz="UTC"),
    pa.date32(),
    pa.string(),
    pa.string(),
    pa.int64(),
    pa.string(),
    pa.string(),
    pa.float64(),
    pa.int32(),
    pa.float64(),
)


def pg_dsn(connection) -> dict:
    cfg = connection.settings_dict
    dsn = {
        "host": cfg["HOST"] or "localhost",
        "port": int(cfg["PORT"] or 5432),
        "dbname": cfg["NAME"],
        "user": cfg["USER"] or None,
        "password": cfg["PASSWORD"] or None,
    }
    return {key: value for key, value in dsn.items() if value}


def write_pg_table(connection) -> None:
    """The orders as `metrics_test.orders` in the test database, committed on a
    connection of its own (the warehouse is another connection, as in real life)."""
    columns = ", ".join(f"{name} {kind}" for name, kind in zip(COLUMNS, PG_TYPES, strict=True))
    with psycopg.connect(**pg_dsn(connection), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
        conn.execute(f"DROP TABLE IF EXISTS {PG_SCHEMA}.orders")
        conn.execute(f"CREATE TABLE {PG_SCHEMA}.orders ({columns})")
        marks = ", ".join(["%s"] * len(COLUMNS))
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {PG_SCHEMA}.orders VALUES ({marks})", ROWS)


def write_parquet(media_root: Path) -> Path:
    path = media_root / PARQUET_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = [
        pa.array([row[index] for row in ROWS], kind) for index, kind in enumerate(ARROW_TYPES)
    ]
    pq.write_table(pa.table(dict(zip(COLUMNS, arrays, strict=True))), path)
    return path


def orders_product(*, engine: str, domain, connection=None, media_root=None, **fields):
    """sales.orders served from PostgreSQL or a Parquet file, its columns read from the
    source (as a schema refresh does), `email` confidential."""
    product = ProductFactory(domain=domain, name="Orders", slug="orders", **fields)
    if engine == "postgresql":
        write_pg_table(connection)
        dsn = pg_dsn(connection)
        source = DataSourceFactory(
            kind=SourceKind.POSTGRESQL,
            path="",
            host=dsn["host"],
            port=dsn["port"],
            database=dsn["dbname"],
            username=dsn.get("user", ""),
        )
        port = OutputPortFactory(
            product=product,
            name="Orders",
            slug="orders",
            source=source,
            schema_name=PG_SCHEMA,
            table_name="orders",
        )
    else:
        write_parquet(media_root)
        port = FilePortFactory(
            product=product, name="Orders", slug="orders", file_path=PARQUET_PATH
        )
    with connector_for_port(port) as connector:
        schema_apply_columns(port=port, columns=connector.describe())
    port.columns.filter(name="email").update(classification=Classification.CONFIDENTIAL)
    return product


def hand_sql(engine: str, sql: str, *, connection=None, media_root=None) -> list[tuple]:
    """Run hand-written SQL directly on the engine: `{t}` is the orders relation, `{double}`
    the engine's floating-point type."""
    if engine == "postgresql":
        with psycopg.connect(**pg_dsn(connection)) as conn:
            text = sql.format(t=f"{PG_SCHEMA}.orders", double="DOUBLE PRECISION")
            return [tuple(row) for row in conn.execute(text).fetchall()]
    path = str(media_root / PARQUET_PATH).replace("'", "''")
    with duckdb.connect() as conn:
        text = sql.format(t=f"read_parquet('{path}')", double="DOUBLE")
        return [tuple(row) for row in conn.execute(text).fetchall()]
