"""A PostgreSQL table and columns whose names hold `%` are read like any other, on the
paths that bind values into the statement: a grant's row filter, a reader's filter, a
sync's plan and send, a check with listed values. psycopg reads each `%` of a bound
statement as a placeholder's start, so `"label%s"` with a filter value once answered 502
("the query has 3 placeholders but 1 parameters were passed")."""

from __future__ import annotations

import json

import pytest

from products.catalog.services.schema_refresh import schema_apply_columns
from products.connectors import connector_for_port
from sharing.access.services.grants import grant_create
from tests.factories import OutputPortFactory, ProductFactory, UserFactory, metadata_db_source

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA = "rt_pct"
TABLE = "rates %s"
API = "/api/v1/products/sales.rates/data/"


@pytest.fixture
def rates(postgres, domain, owner):
    with postgres.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cur.execute(f"CREATE SCHEMA {SCHEMA}")
        cur.execute(
            f'CREATE TABLE {SCHEMA}."{TABLE}" (id bigint, "label%s" text, "rate %b" numeric, '
            '"back\\slash%" text)'
        )
        cur.execute(
            f"INSERT INTO {SCHEMA}.\"{TABLE}\" VALUES (1, 'a', 1.5, 'x'), (2, 'b', 2.5, 'y'),"
            " (3, 'a', NULL, NULL)"
        )
    product = ProductFactory(domain=domain, name="Rates", slug="rates", owners=[owner])
    port = OutputPortFactory(
        product=product,
        source=metadata_db_source(),
        schema_name=SCHEMA,
        table_name=TABLE,
        slug="rates",
    )
    with connector_for_port(port) as connector:
        schema_apply_columns(port=port, columns=connector.describe())
    yield product
    with postgres.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def _rows(response) -> list[dict]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert response.status_code == 200, body[:500]
    return json.loads(body)  # a JSON array of row objects


def test_a_readers_filter_on_a_column_named_with_percent(client_as, rates, owner):
    response = client_as(owner).get(
        API,
        {"format": "json", "filter": json.dumps([{"column": "label%s", "op": "=", "value": "a"}])},
    )
    rows = _rows(response)
    assert [row["id"] for row in rows] == [1, 3]
    assert rows[0]["rate %b"] == 1.5 and rows[0]["back\\slash%"] == "x"


def test_a_grants_row_filter_on_a_column_named_with_percent(client_as, rates, owner):
    grantee = UserFactory(username="analyst")
    grant_create(
        product=rates,
        by=owner,
        user=grantee,
        reason="b only",
        row_filter=[{"column": "label%s", "op": "=", "value": "b"}],
    )
    rows = _rows(client_as(grantee).get(API, {"format": "json"}))
    assert [(row["id"], row["rate %b"]) for row in rows] == [(2, 2.5)]
    csv = client_as(grantee).get(API, {"format": "csv"})
    assert csv.status_code == 200
    assert b"".join(csv.streaming_content).decode().splitlines()[1:] == ["2,b,2.5,y"]
