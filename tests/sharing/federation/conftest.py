"""Fixtures of the federated query tests: `sales.orders` (a Parquet file, with a
confidential and a restricted column), `crm.customers` and `crm.visits` (two tables of one
PostgreSQL source, committed: the source is another connection), and a narrowed grantee."""

from __future__ import annotations

import psycopg
import pytest

from products.choices import Classification, SourceKind
from tests.conftest import pg_info
from tests.factories import (
    ColumnFactory,
    DataSourceFactory,
    DomainFactory,
    OutputPortFactory,
    ProductFactory,
    UserFactory,
)
from tests.sharing.readers import grant

CUSTOMERS = [  # customer_id, country, email (confidential), segment
    (1, "BE", "ann@x", "retail"),
    (2, "NL", "bob@x", "retail"),
    (3, "BE", None, "pro"),
    (4, "FR", "dan@x", "pro"),
]
VISITS = [(1, 5), (1, 2), (2, 7), (3, 1), (4, 9)]  # customer_id, pages


@pytest.fixture
def crm(postgres):
    """crm.customers and crm.visits on one PostgreSQL source."""
    info = pg_info(postgres)
    with psycopg.connect(**info, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS federation_test")
        conn.execute("DROP TABLE IF EXISTS federation_test.customers, federation_test.visits")
        conn.execute(
            "CREATE TABLE federation_test.customers (customer_id bigint, country text,"
            " email text, segment text)"
        )
        conn.execute("CREATE TABLE federation_test.visits (customer_id bigint, pages int)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO federation_test.customers VALUES (%s,%s,%s,%s)", CUSTOMERS)
            cur.executemany("INSERT INTO federation_test.visits VALUES (%s,%s)", VISITS)
    domain = DomainFactory(name="CRM", slug="crm")
    source = DataSourceFactory(
        kind=SourceKind.POSTGRESQL,
        path="",
        host=info["host"],
        port=info["port"],
        database=info["dbname"],
        username=info.get("user", ""),
    )
    products = {}
    for slug, table, columns in (
        (
            "customers",
            "customers",
            {"customer_id": "bigint", "country": "text", "email": "text", "segment": "text"},
        ),
        ("visits", "visits", {"customer_id": "bigint", "pages": "integer"}),
    ):
        product = ProductFactory(domain=domain, name=slug.title(), slug=slug)
        port = OutputPortFactory(
            product=product,
            source=source,
            schema_name="federation_test",
            table_name=table,
            slug=slug,
        )
        for position, (name, data_type) in enumerate(columns.items()):
            ColumnFactory(
                port=port,
                name=name,
                position=position,
                data_type=data_type,
                classification=Classification.CONFIDENTIAL
                if name == "email"
                else Classification.INTERNAL,
            )
        products[slug] = product
    yield products
    with psycopg.connect(**info, autocommit=True) as conn:
        conn.execute("DROP SCHEMA federation_test CASCADE")


@pytest.fixture
def admin(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def narrowed(crm, orders):
    """A grantee of sales.orders (Belgian rows) and crm.customers (Belgian rows), with
    the confidential and restricted columns masked; no grant on crm.visits."""
    user = UserFactory(username="narrowed")
    belgium = [{"column": "country", "op": "=", "value": "BE"}]
    grant(orders, user, row_filter=belgium)
    grant(crm["customers"], user, row_filter=belgium)
    return user
