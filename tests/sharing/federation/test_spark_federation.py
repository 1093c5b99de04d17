"""Federated queries over products on Spark (the session's `spark_server`): a query naming
only products of one Spark source runs there whole, in Spark's SQL, under the reader's
masks and row filters (fenced: the query's own expressions never meet a row outside
them); joined with a product elsewhere, the Spark side's columns and predicates are
pushed down and its rows streamed as Arrow into DuckDB."""

from __future__ import annotations

import pytest

from products.connectors.spark import SparkConnector, SparkEndpoint, spark_session_open
from sharing.federation.refusals import QueryRefused
from sharing.federation.services.explain import query_explain
from sharing.federation.services.running import query_rows, query_start
from sharing.models import FederatedQuery
from tests.factories import (
    DomainFactory,
    OutputPortFactory,
    ProductFactory,
    SparkSourceFactory,
    UserFactory,
    columns_declare,
)
from tests.sharing.readers import grant

pytestmark = [pytest.mark.spark, pytest.mark.django_db(transaction=True)]

SCHEMA = "portal_federation"
CUSTOMER_ID = "customer id"
CUSTOMERS = {CUSTOMER_ID: "bigint", "country": "string", "email": "string", "segment": "string"}
VISITS = {CUSTOMER_ID: "bigint", "pages": "int"}


@pytest.fixture(scope="module")
def spark_crm(spark_server) -> SparkEndpoint:
    """portal_federation.customers and .visits, written once through a session of its
    own. Customer 2 (NL) has a visit of 0 pages: 10 / pages fails on it under ANSI."""
    endpoint = SparkEndpoint(host="127.0.0.1", port=spark_server.port)
    q = SparkConnector.quote_ident
    spark = spark_session_open(endpoint)
    try:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {SCHEMA}")
        spark.sql(f"DROP TABLE IF EXISTS {SCHEMA}.customers")
        spark.sql(f"DROP TABLE IF EXISTS {SCHEMA}.visits")
        spark.sql(
            f"CREATE TABLE {SCHEMA}.customers ({q(CUSTOMER_ID)} BIGINT, country STRING, "
            "email STRING, segment STRING) USING parquet"
        )
        spark.sql(
            f"INSERT INTO {SCHEMA}.customers VALUES (1, 'BE', 'ann@x', 'retail'), "
            "(2, 'NL', 'bob@x', 'retail'), (3, 'BE', NULL, 'pro'), (4, 'FR', 'dan@x', 'pro')"
        )
        spark.sql(
            f"CREATE TABLE {SCHEMA}.visits ({q(CUSTOMER_ID)} BIGINT, pages INT) USING parquet"
        )
        spark.sql(f"INSERT INTO {SCHEMA}.visits VALUES (1, 5), (1, 2), (2, 0), (3, 1), (4, 9)")
    finally:
        spark.stop()
    return endpoint


@pytest.fixture
def crm(spark_crm):
    domain = DomainFactory(name="CRM", slug="crm")
    source = SparkSourceFactory(host="127.0.0.1", port=spark_crm.port, domains=[domain])
    products = {}
    for slug, columns in (("customers", CUSTOMERS), ("visits", VISITS)):
        product = ProductFactory(domain=domain, name=slug.title(), slug=slug)
        port = OutputPortFactory(
            product=product, source=source, schema_name=SCHEMA, table_name=slug, slug=slug
        )
        columns_declare(port, columns)
        products[slug] = product
    return products


@pytest.fixture
def admin(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


def run(user, sql, **kwargs):
    return query_rows(query_start(user=user, sql=sql), **kwargs)


def test_a_query_over_two_spark_products_runs_on_spark(crm, admin):
    answer = run(
        admin,
        "SELECT c.segment, sum(v.pages) AS pages, count(*) FROM crm.customers c "
        'JOIN crm.visits v ON v."customer id" = c."customer id" GROUP BY 1 ORDER BY 1',
    )
    assert answer["engine"] == "spark"
    assert answer["columns"] == ["segment", "pages", "count"]
    assert answer["rows"] == [["pro", 10, 2], ["retail", 7, 3]]
    assert FederatedQuery.objects.get().engine == "spark"


def test_on_spark_a_narrowed_reader_gets_masks_filters_and_a_fence(crm):
    user = UserFactory(username="narrowed")
    belgium = [{"column": "country", "op": "=", "value": "BE"}]
    grant(crm["customers"], user, row_filter=belgium)
    grant(crm["visits"], user, row_filter=[{"column": "pages", "op": ">", "value": 0}])
    answer = run(user, 'SELECT "customer id", email FROM crm.customers ORDER BY 1')
    assert answer["engine"] == "spark"
    assert answer["rows"] == [[1, "****"], [3, None]]
    # 10 / pages would fail on the visit of 0 pages, which the grant leaves out. On this
    # unpartitioned table Spark evaluates the grant's condition first even without the
    # fence; test_spark_channels.py's partitioned table is where the fence itself shows.
    answer = run(user, 'SELECT "customer id" FROM crm.visits WHERE 10 / pages > 3 ORDER BY 1')
    assert answer["rows"] == [[1], [3]]  # 10/2 and 10/1
    with pytest.raises(QueryRefused) as refused:
        run(user, "SELECT count(*) FROM crm.customers WHERE email = 'ann@x'")
    assert refused.value.status == 403


def test_the_row_cap_holds_on_spark(crm, admin):
    answer = run(admin, "SELECT pages FROM crm.visits ORDER BY 1", limit=2)
    assert answer["rows"] == [[0], [1]]
    assert answer["truncated"] is True


def test_a_spark_product_joins_a_parquet_product_in_duckdb_with_pushdown(crm, orders, admin):
    sql = (
        "SELECT o.order_id, c.segment FROM sales.orders o JOIN crm.customers c "
        "ON c.country = o.country WHERE c.segment = 'pro' ORDER BY 1, 2"
    )
    answer = run(admin, sql)
    assert answer["engine"] == "federated"
    assert answer["rows"] == [[1, "pro"], [3, "pro"], [4, "pro"]]
    spark_statement = next(s for s in query_explain(user=admin, sql=sql)["statements"])
    assert spark_statement["engine"] == "spark"
    # only the columns the query reads, and its predicate on them, read at the source
    assert spark_statement["sql"] == (
        "SELECT `country`, `segment` FROM `portal_federation`.`customers` WHERE (`segment` = 'pro')"
    )
