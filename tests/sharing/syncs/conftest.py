"""Fixtures of the sync tests: a PostgreSQL source table (the Leads product's port) and a
PostgreSQL destination table, both in the test database on the real server, committed
through their own connections (the source and the destination are other sessions)."""

from __future__ import annotations

import psycopg
import pytest

from products.choices import SourceKind
from sharing.models import SyncDestination
from sharing.models.syncs import DestinationKind
from tests.conftest import pg_info
from tests.factories import (
    DataSourceFactory,
    OutputPortFactory,
    ProductFactory,
    columns_declare,
)

SOURCE_SCHEMA = "syncs_src"
DEST_SCHEMA = "syncs_dst"
LEADS = [
    # lead_id, email, country, score, bid
    (1, "a@x", "BE", 0.5, 10.0),
    (2, "b@x", "NL", 0.7, 20.0),
    (3, None, "BE", 0.1, 30.0),
    (4, "d@x", "FR", 0.9, 40.0),
    (5, "e@x", "BE", 0.3, 50.0),
]
LEAD_TYPES = {
    "lead_id": "bigint",
    "email": "text",
    "country": "text",
    "score": "double precision",
    "bid": "numeric(12,2)",
}


class Table:
    """A table of the test database, written and read through its own connection."""

    def __init__(self, info: dict, schema: str, name: str) -> None:
        self.info, self.schema, self.name = info, schema, name

    @property
    def qualified(self) -> str:
        return f'"{self.schema}"."{self.name}"'

    def execute(self, sql: str, params=None) -> None:
        with psycopg.connect(**self.info, autocommit=True) as conn:
            conn.execute(sql.replace("{table}", self.qualified), params)

    def rows(self, columns: str = "*", order: str = "1") -> list[tuple]:
        with psycopg.connect(**self.info, autocommit=True) as conn:
            return conn.execute(
                f"SELECT {columns} FROM {self.qualified} ORDER BY {order}"
            ).fetchall()

    def insert(self, rows: list[tuple]) -> None:
        with psycopg.connect(**self.info, autocommit=True) as conn, conn.cursor() as cur:
            marks = ", ".join(["%s"] * len(rows[0]))
            cur.executemany(f"INSERT INTO {self.qualified} VALUES ({marks})", rows)


def pg_source(info: dict):
    """A PostgreSQL data source on the test database (as pg_info describes it)."""
    return DataSourceFactory(
        kind=SourceKind.POSTGRESQL,
        path="",
        host=info["host"],
        port=info["port"],
        database=info["dbname"],
        username=info.get("user", ""),
    )


@pytest.fixture
def source_table(postgres) -> Table:
    table = Table(pg_info(postgres), SOURCE_SCHEMA, "leads")
    table.execute(f"CREATE SCHEMA IF NOT EXISTS {SOURCE_SCHEMA}")
    table.execute("DROP TABLE IF EXISTS {table}")
    table.execute(
        "CREATE TABLE {table} (lead_id bigint, email text, country text, "
        "score double precision, bid numeric(12,2))"
    )
    table.insert(LEADS)
    return table


@pytest.fixture
def leads(source_table, domain, owner):
    """The Leads product of the Sales domain (owned by `owner`), its port on the source
    table; email is confidential (masked for grantees)."""
    source = pg_source(source_table.info)
    product = ProductFactory(domain=domain, name="Leads", slug="leads", owners=[owner])
    port = OutputPortFactory(
        product=product, source=source, schema_name=SOURCE_SCHEMA, table_name="leads", slug="leads"
    )
    columns_declare(port, LEAD_TYPES)
    return product


@pytest.fixture
def crm_table(postgres) -> Table:
    """The destination: a CRM's table, keyed by lead_id, with a column of its own."""
    table = Table(pg_info(postgres), DEST_SCHEMA, "crm_leads")
    table.execute(f"CREATE SCHEMA IF NOT EXISTS {DEST_SCHEMA}")
    table.execute("DROP TABLE IF EXISTS {table}")
    table.execute(
        "CREATE TABLE {table} (lead_id bigint PRIMARY KEY, email text, country text, "
        "score double precision, bid numeric(12,2) CHECK (bid IS NULL OR bid < 1000), "
        "note text)"
    )
    return table


def pg_destination(table: Table, name: str) -> SyncDestination:
    """`table` of the test database as a PostgreSQL destination (shared: admins')."""
    info = table.info
    return SyncDestination.objects.create(
        name=name,
        kind=DestinationKind.POSTGRESQL,
        host=info["host"],
        port=info["port"],
        database=info["dbname"],
        username=info.get("user", ""),
        schema_name=table.schema,
        table_name=table.name,
    )


@pytest.fixture
def crm(crm_table) -> SyncDestination:
    """The CRM table as a destination admins registered (every domain may use it)."""
    return pg_destination(crm_table, "CRM leads")


def plan_tables() -> list[str]:
    """The temporary tables a plan makes (scan, unseen keys, plan) still there, in any
    session: a run drops them whether it succeeds or fails."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'sync\\_scan\\_%' "
            "OR tablename LIKE 'sync\\_unseen\\_%' OR tablename LIKE 'sync\\_plan\\_%'"
        )
        return sorted(name for (name,) in cur.fetchall())
