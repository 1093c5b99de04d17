"""Governed reads and metrics of a port on Spark (the session's `spark_server`): a grantee
reads through the data API in JSON, CSV and Arrow exactly what the grant allows (a masked
confidential column, the grant's row filter and their own, bound by Spark), a metric is
evaluated on Spark per month in UTC, and the data's fingerprint is Spark's own."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from products.connectors.spark import SparkConnector, SparkEndpoint, spark_session_open
from products.definitions.services.metrics import metric_create, metric_evaluate
from sharing.choices import Channel
from sharing.models import AccessEvent
from sharing.serving.fingerprints import source_fingerprint
from tests.factories import (
    OutputPortFactory,
    ProductFactory,
    SparkSourceFactory,
    UserFactory,
    columns_declare,
)
from tests.sharing.readers import grant

pytestmark = pytest.mark.spark

SCHEMA = "portal_reads"
TABLE = "orders"
ORDER_ID = "order id"
COLUMNS = {
    ORDER_ID: "bigint",
    "country": "string",
    "email": "string",  # confidential
    "amount": "decimal(10,2)",
    "score": "double",
    "ordered_at": "timestamp_ltz",
}
API = "/api/v1/products/sales.orders/data/"


@pytest.fixture(scope="module")
def spark_orders(spark_server) -> SparkEndpoint:
    """portal_reads.orders, written once through a session of its own."""
    endpoint = SparkEndpoint(host="127.0.0.1", port=spark_server.port)
    q = SparkConnector.quote_ident
    spark = spark_session_open(endpoint)
    try:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {SCHEMA}")
        spark.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{TABLE}")
        spark.sql(
            f"CREATE TABLE {SCHEMA}.{TABLE} ({q(ORDER_ID)} BIGINT, country STRING, email STRING,"
            " amount DECIMAL(10,2), score DOUBLE, ordered_at TIMESTAMP) USING parquet"
        )
        spark.sql(
            f"INSERT INTO {SCHEMA}.{TABLE} VALUES "
            "(1, 'BE', 'a@x', 12.50, 0.5, TIMESTAMP '2024-01-02 03:04:05 UTC'), "
            "(2, 'NL', 'b@x', NULL, double('NaN'), TIMESTAMP '2024-01-31 23:30:00 UTC'), "
            "(3, 'BE', NULL, 99999999.99, double('NaN'), TIMESTAMP '2024-02-01 00:00:00 UTC'), "
            "(4, 'BE', 'd@x', 1.00, NULL, TIMESTAMP '2024-01-31 23:59:59.5 UTC'), "
            "(5, 'FR', 'e@x', 7.25, 2.0, NULL)"
        )
    finally:
        spark.stop()
    return endpoint


@pytest.fixture
def product(spark_orders, domain):
    source = SparkSourceFactory(host="127.0.0.1", port=spark_orders.port, domains=[domain])
    product = ProductFactory(domain=domain, name="Orders", slug="orders")
    port = OutputPortFactory(
        product=product, source=source, schema_name=SCHEMA, table_name=TABLE, slug="orders"
    )
    columns_declare(port, COLUMNS)
    return product


@pytest.fixture
def belgian(product):
    """A grantee of the Belgian rows, email masked (the grant does not name it)."""
    user = UserFactory(username="belgian")
    grant(product, user, row_filter=[{"column": "country", "op": "=", "value": "BE"}])
    return user


def _read(client_as, user, fmt: str, **params):
    params = {
        "format": fmt,
        "columns": f"{ORDER_ID},email,amount,score,ordered_at",
        # the reader's own filter, on top of the grant's: Spark binds its value
        "filter": json.dumps([{"column": ORDER_ID, "op": "<", "value": 4}]),
        **params,
    }
    response = client_as(user).get(API, params)
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content)


def test_a_narrowed_grantee_reads_json_csv_and_arrow_as_the_grant_allows(
    product, belgian, client_as
):
    # Spark gives no order without ORDER BY: rows are compared by their id.
    rows = sorted(json.loads(_read(client_as, belgian, "json")), key=lambda row: row[ORDER_ID])
    assert rows == [
        {
            ORDER_ID: 1,
            "email": "****",
            "amount": 12.5,
            "score": 0.5,
            "ordered_at": "2024-01-02T03:04:05+00:00",
        },
        {
            ORDER_ID: 3,
            "email": None,  # NULL stays NULL under the mask
            "amount": 99999999.99,
            "score": "NaN",
            "ordered_at": "2024-02-01T00:00:00+00:00",
        },
    ]

    text = _read(client_as, belgian, "csv").decode()
    header, *lines = list(csv.reader(io.StringIO(text)))
    assert header == [ORDER_ID, "email", "amount", "score", "ordered_at"]
    assert sorted(line[:3] for line in lines) == [["1", "****", "12.50"], ["3", "", "99999999.99"]]

    arrow = pa.ipc.open_stream(_read(client_as, belgian, "arrow")).read_all().sort_by(ORDER_ID)
    assert arrow.column_names == [ORDER_ID, "email", "amount", "score", "ordered_at"]
    assert arrow.column(ORDER_ID).to_pylist() == [1, 3]
    assert arrow.column("email").to_pylist() == ["****", None]
    assert arrow.column("amount").to_pylist() == [Decimal("12.50"), Decimal("99999999.99")]
    score = arrow.column("score").to_pylist()
    assert score[0] == 0.5 and math.isnan(score[1])
    assert arrow.column("ordered_at").to_pylist() == [
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2024, 2, 1, tzinfo=UTC),
    ]
    events = AccessEvent.objects.filter(product=product, user=belgian)
    assert sorted(event.rows for event in events) == [2, 2, 2]
    assert all(event.detail["masked"] == ["email"] for event in events)


def test_the_grantee_cannot_filter_on_the_masked_column_nor_read_unknown_ones(
    product, belgian, client_as
):
    masked = client_as(belgian).get(
        API, {"filter": json.dumps([{"column": "email", "op": "=", "value": "a@x"}])}
    )
    assert masked.status_code == 403
    unknown = client_as(belgian).get(API, {"columns": "nope"})
    assert unknown.status_code == 400


def test_a_metric_per_month_in_utc_runs_on_spark(product, owner, belgian):
    metric = metric_create(
        port=product.ports.get(),
        by=owner,
        key="sales.amount",
        name="Amount",
        aggregation="sum",
        column="amount",
        time_column="ordered_at",
    )
    result = metric_evaluate(metric=metric, user=owner, channel=Channel.API, grain="month")
    # 23:59:59.5 on 31 January is January in UTC; the NULL time is its own period.
    assert [(row["period"], row["value"]) for row in result.rows] == [
        (None, Decimal("7.25")),
        (date(2024, 1, 1), Decimal("13.50")),
        (date(2024, 2, 1), Decimal("99999999.99")),
    ]
    belgian_result = metric_evaluate(
        metric=metric, user=belgian, channel=Channel.API, grain="month"
    )
    assert [(row["period"], row["value"]) for row in belgian_result.rows] == [
        (date(2024, 1, 1), Decimal("13.50")),
        (date(2024, 2, 1), Decimal("99999999.99")),
    ]
    assert "`" in result.sql  # written for Spark


def test_the_fingerprint_is_the_rows_on_spark_and_none_for_the_query_cache(product):
    port = product.ports.get()
    first = source_fingerprint(port)
    assert first.startswith("spark-rows:5:")
    assert source_fingerprint(port) == first
    assert source_fingerprint(port, read_views=False) == ""  # no cheap one: not cached
