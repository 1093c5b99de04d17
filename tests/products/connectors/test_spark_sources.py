"""Spark sources without a server: what an admin registers (the API, the admin page and
the service say what is wrong), where a Spark port may point, and how the connector signs
in (and, with the session's `spark_server`, that a Databricks cluster id still reads)."""

import pytest
from django.core.exceptions import ValidationError

from products.catalog.services.ports import (
    data_source_create,
    port_connector,
    port_location_check,
)
from products.choices import SourceKind
from products.connectors import ConnectorError, LocationRefused
from products.connectors.spark import (
    SparkConnector,
    SparkEndpoint,
    _channel_builder,
    _session,
    read_only_check,
    spark_endpoint,
    spark_session_open,
)
from products.models import DataSource
from tests.factories import (
    OutputPortFactory,
    ProductFactory,
    SparkSourceFactory,
    source_allowance,
)


def test_an_admin_registers_a_spark_source_through_the_api(admin_user, client_as):
    response = client_as(admin_user).post(
        "/api/v1/sources/",
        {"name": "lake", "kind": "spark", "host": "spark.example.com", "password_env": "LAKE"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "spark"
    source = DataSource.objects.get(name="lake")
    assert (source.host, source.port, source.password_env) == ("spark.example.com", 15002, "LAKE")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"host": ""}, "host"),
        ({"host": "sc://spark.example.com:15002"}, "host"),
        ({"host": "spark.example.com/;use_ssl=false"}, "host"),
        ({"host": "spark", "database": "sales"}, "database"),
        ({"host": "spark", "path": "/data/lake"}, "path"),
        ({"host": "spark", "username": "me;token=x"}, "username"),
        ({"host": "spark", "password_env": "dapi0123456789"}, None),  # a name it may be
        ({"host": "spark", "password_env": "my token!"}, "password_env"),
        ({"host": "spark", "cluster_id": "0123-456789-abcdefgh"}, None),
        ({"host": "spark", "cluster_id": "0123-456789-abcdefgh\n"}, "cluster_id"),
    ],
)
def test_a_spark_source_says_which_field_is_wrong(admin_user, fields, field):
    if field is None:
        assert data_source_create(by=admin_user, name="lake", kind=SourceKind.SPARK, **fields)
        return
    with pytest.raises(ValidationError) as error:
        data_source_create(by=admin_user, name="lake", kind=SourceKind.SPARK, **fields)
    assert list(error.value.message_dict) == [field]


# --- Databricks: the cluster id -----------------------------------------------------------

CLUSTER = "0123-456789-abcdefgh"
CLUSTER_HEADER = "x-databricks-cluster-id"


def test_an_admin_registers_a_databricks_cluster_through_the_api(admin_user, client_as):
    response = client_as(admin_user).post(
        "/api/v1/sources/",
        {
            "name": "workspace",
            "kind": "spark",
            "host": "dbc-1234abcd-5678.cloud.databricks.com",
            "port": 443,
            "password_env": "DATABRICKS_TOKEN",
            "cluster_id": CLUSTER,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert CLUSTER not in response.content.decode()  # a connection detail, as the host
    assert DataSource.objects.get(name="workspace").cluster_id == CLUSTER


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "duckdb", "path": "/data/lake.duckdb", "cluster_id": CLUSTER},
        {"kind": "postgresql", "database": "dwh", "cluster_id": CLUSTER},
        {"kind": "spark", "host": "spark", "cluster_id": "0123 456789"},
        {"kind": "spark", "host": "spark", "cluster_id": f"{CLUSTER};token=x"},
        {"kind": "spark", "host": "spark", "cluster_id": f"{CLUSTER}/other"},
        {"kind": "spark", "host": "spark", "cluster_id": "x-databricks-session-id=abc"},
        {"kind": "spark", "host": "spark", "cluster_id": f"{CLUSTER}\r\nx-other: 1"},
    ],
)
def test_the_api_refuses_a_cluster_id_naming_the_field(admin_user, client_as, fields):
    response = client_as(admin_user).post(
        "/api/v1/sources/", {"name": "lake", **fields}, format="json"
    )

    assert response.status_code == 400, response.content
    assert list(response.json()) == ["cluster_id"]
    assert not DataSource.objects.exists()


ADMIN_ADD = "/admin/products/datasource/add/"
NO_ALLOWANCES = {  # the page's inline of allowances, empty
    "allowances-TOTAL_FORMS": "0",
    "allowances-INITIAL_FORMS": "0",
    "allowances-MIN_NUM_FORMS": "0",
    "allowances-MAX_NUM_FORMS": "1000",
}


def admin_source_post(client, admin_user, **fields):
    client.force_login(admin_user)
    return client.post(ADMIN_ADD, {"name": "lake", **NO_ALLOWANCES, **fields})


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "duckdb", "path": "/data/lake.duckdb", "cluster_id": CLUSTER}, "cluster_id"),
        ({"kind": "spark", "host": "spark", "cluster_id": f"{CLUSTER};x=1"}, "cluster_id"),
        # The page runs the API's checks, not only the cluster id's.
        ({"kind": "spark", "host": "sc://spark:15002"}, "host"),
        ({"kind": "postgresql"}, "database"),
        ({"kind": "spark", "host": "spark", "password_env": "my token!"}, "password_env"),
    ],
)
def test_the_admin_page_refuses_what_the_api_refuses_on_its_field(
    client, admin_user, fields, field
):
    response = admin_source_post(client, admin_user, **fields)

    assert response.status_code == 200  # the form again, with its errors
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert not DataSource.objects.exists()


def test_the_admin_page_registers_a_databricks_cluster(client, admin_user):
    response = admin_source_post(
        client,
        admin_user,
        kind="spark",
        host="dbc-1234abcd-5678.cloud.databricks.com",
        port="443",
        password_env="DATABRICKS_TOKEN",
        cluster_id=CLUSTER,
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    source = DataSource.objects.get(name="lake")
    assert (source.port, source.cluster_id) == (443, CLUSTER)


def test_a_cluster_id_goes_in_the_headers_of_every_call_not_the_address(db, monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-secret")
    source = SparkSourceFactory(
        host="dbc-1234abcd-5678.cloud.databricks.com",
        port=443,
        password_env="DATABRICKS_TOKEN",
        cluster_id=CLUSTER,
    )
    endpoint = spark_endpoint(source)
    assert endpoint.cluster_id == CLUSTER
    assert endpoint.url == "sc://dbc-1234abcd-5678.cloud.databricks.com:443/;use_ssl=true"

    builder = _channel_builder(endpoint)
    assert (CLUSTER_HEADER, CLUSTER) in builder.metadata()
    assert "dapi-secret" not in str(builder.metadata())  # the token goes as credentials

    without = _channel_builder(SparkEndpoint(host="spark"))
    assert CLUSTER_HEADER not in dict(without.metadata())


def test_a_cluster_id_stored_around_the_checks_is_not_sent(db):
    source = SparkSourceFactory(host="spark", cluster_id=f"{CLUSTER};token=x")
    with pytest.raises(ConnectorError) as error:
        spark_endpoint(source)
    assert "cluster id" in str(error.value)


@pytest.fixture
def little_table(spark_server) -> tuple[str, str]:
    """portal_sources.clusters, three rows, written through a session of its own."""
    spark = spark_session_open(SparkEndpoint(host="127.0.0.1", port=spark_server.port))
    try:
        spark.sql("CREATE DATABASE IF NOT EXISTS portal_sources")
        spark.sql("DROP TABLE IF EXISTS portal_sources.clusters")
        spark.sql("CREATE TABLE portal_sources.clusters (n INT) USING parquet")
        spark.sql("INSERT INTO portal_sources.clusters VALUES (1), (2), (3)")
    finally:
        spark.stop()
    return "portal_sources", "clusters"


@pytest.mark.spark
def test_a_source_with_a_cluster_id_reads_from_a_spark_server(db, spark_server, little_table):
    """A plain Spark Connect server ignores the header; each cluster has its own session
    (one cluster's session would otherwise run another's statements)."""
    schema_name, table_name = little_table
    on_cluster = SparkSourceFactory(host="127.0.0.1", port=spark_server.port, cluster_id=CLUSTER)
    port = OutputPortFactory(source=on_cluster, schema_name=schema_name, table_name=table_name)

    with port_connector(port) as connector:
        assert connector.endpoint.cluster_id == CLUSTER
        assert connector.fetch(f"SELECT sum(n) FROM {connector.relation_sql()}") == [(6,)]

    endpoint = spark_endpoint(on_cluster)
    other_cluster = SparkEndpoint(
        host="127.0.0.1", port=spark_server.port, cluster_id="0123-456789-other"
    )
    assert _session(endpoint) is _session(spark_endpoint(on_cluster))
    assert _session(endpoint) is not _session(other_cluster)


@pytest.mark.parametrize(
    ("schema_name", "refused"),
    [
        ("sales", False),
        ("", False),  # Spark's `default`
        ("main.sales", False),
        ("spark_catalog.parquet", False),  # a schema named parquet, named with its catalog
        ("parquet", True),  # parquet.`/path`: a file, not a table
        ("JSON", True),
        ("global_temp", True),
        ("INFORMATION_SCHEMA", True),
        ("main.information_schema", True),
        ("system.billing", True),
        ("a.b.c", True),
        ("main.", True),
    ],
)
def test_where_a_spark_port_may_point(db, schema_name, refused):
    source = SparkSourceFactory(host="spark")
    # allowed in every schema (`*`): only the rules of Spark's names refuse
    port = OutputPortFactory(source=source, schema_name=schema_name, table_name="orders")
    if refused:
        with pytest.raises(ValidationError) as error:
            port_location_check(port=port)
        assert "schema_name" in error.value.message_dict
    else:
        port_location_check(port=port)


def test_a_spark_allowance_names_the_catalog_as_the_port_does(domain):
    source = SparkSourceFactory(host="spark", domains=[])
    source_allowance(source=source, domain=domain, schema_name="main.sales")
    product = ProductFactory(domain=domain)
    allowed = OutputPortFactory(
        product=product, source=source, schema_name="main.sales", table_name="o", allowed=False
    )
    port_location_check(port=allowed)
    # The same table named without its catalog (the session's current one) is another
    # name: refused, as every name the allowance does not give verbatim.
    other = OutputPortFactory(
        product=product, source=source, schema_name="sales", table_name="o", allowed=False
    )
    with pytest.raises(ValidationError):
        port_location_check(port=other)


def test_a_refused_spark_port_is_read_by_nothing(db):
    source = SparkSourceFactory(host="spark")
    port = OutputPortFactory(source=source, schema_name="parquet", table_name="/etc/passwd")
    with pytest.raises(LocationRefused):
        port_connector(port)


def test_quoting_and_relation_names():
    assert SparkConnector.quote_ident("a`b c") == "`a``b c`"
    with pytest.raises(ValueError):
        SparkConnector.quote_ident("a\x00b")
    endpoint = SparkEndpoint(host="spark")
    assert SparkConnector(endpoint=endpoint, table_name="t").relation_sql() == "`default`.`t`"
    three_parts = SparkConnector(endpoint=endpoint, schema_name="main.sales", table_name="o`k")
    assert three_parts.relation_sql() == "`main`.`sales`.`o``k`"


def test_a_token_comes_from_the_named_variable_and_turns_tls_on(db, monkeypatch):
    source = SparkSourceFactory(host="spark.example.com", port=443, password_env="LAKE")
    with pytest.raises(ConnectorError) as error:
        spark_endpoint(source)
    assert "LAKE" in str(error.value) and "not set" in str(error.value)

    monkeypatch.setenv("LAKE", "dapi-secret")
    endpoint = spark_endpoint(source)
    assert endpoint.token == "dapi-secret"
    assert endpoint.url == "sc://spark.example.com:443/;use_ssl=true"
    assert "dapi-secret" not in repr(endpoint)
    builder = _channel_builder(endpoint)
    assert builder.token == "dapi-secret" and builder.secure


def test_a_source_without_token_never_sends_the_process_token(monkeypatch):
    """pyspark would send SPARK_CONNECT_AUTHENTICATE_TOKEN to any server without one."""
    monkeypatch.setenv("SPARK_CONNECT_AUTHENTICATE_TOKEN", "someone-elses")
    builder = _channel_builder(SparkEndpoint(host="spark"))
    assert builder.token is None and not builder.secure
    assert builder.endpoint == "spark:15002"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT `a b` FROM `s`.`t` WHERE x = ? AND y LIKE 'a;%'",
        "WITH a AS (SELECT 1 AS x) SELECT x FROM a UNION ALL SELECT 2",
        "SELECT count(*) FROM (SELECT * FROM t) AS served",
        "VALUES (1, 2)",
    ],
)
def test_queries_pass_the_read_only_check(sql):
    read_only_check(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1)",
        "WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a",
        "SELECT 1; SELECT 2",
        "CREATE TABLE x AS SELECT 1",
        "DELETE FROM t",
        "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
        "ADD JAR /tmp/x.jar",
        "USE other",
        "SET spark.sql.runSQLOnFiles=true",
        "REFRESH TABLE t",
        "SELECT * FROM",
        "SELECT '${env:HOME}'",  # Spark would substitute the server's environment
    ],
)
def test_anything_else_is_refused_before_it_is_sent(sql):
    with pytest.raises(ConnectorError):
        read_only_check(sql)
