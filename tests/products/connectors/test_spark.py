"""The Spark connector against a real Spark Connect server (the session's `spark_server`):
Spark's types and awkward values read back as they are, parameters bound by the server,
Arrow streamed in small batches, the catalog listed, and errors that say what went wrong
(a missing table, an unreachable server, a statement stopped at its time limit)."""

import math
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from products.catalog.services.ports import port_relation_problem, source_relations
from products.connectors import ConnectorError, RelationMissing, connector_for_port
from products.connectors.spark import SparkConnector, SparkEndpoint, spark_session_open
from products.connectors.spark_server import free_port
from tests.factories import OutputPortFactory, SparkSourceFactory

pytestmark = pytest.mark.spark

SCHEMA = "portal_test"
TABLE = "orders"
CUSTOMER = "cust`omer"  # a backtick in a name: quoted as `cust``omer`
ORDER_ID = "order id"  # a space
COLUMNS = [
    (ORDER_ID, "bigint"),
    (CUSTOMER, "string"),
    ("amount", "decimal(10,2)"),
    ("score", "double"),
    ("ordered_at", "timestamp_ltz"),
    ("day", "date"),
    ("paid", "boolean"),
]
GENERATED_ROWS = 20  # rows 10..29 besides the three written out
# Long enough to outlast any time limit below (counting 50 billion rows on two cores).
SLOW_QUERY = "SELECT count(*) FROM range(0, 50000000000) AS a"


@pytest.fixture(scope="module")
def spark_endpoint(spark_server) -> SparkEndpoint:
    return SparkEndpoint(host="127.0.0.1", port=spark_server.port)


@pytest.fixture(scope="module")
def orders(spark_endpoint) -> SparkEndpoint:
    """portal_test.orders, written once for this module through a session of its own
    (the connector only reads): NULLs, NaN, a decimal, UTC timestamps, and two column
    names that need quoting."""
    q = SparkConnector.quote_ident
    spark = spark_session_open(spark_endpoint)
    try:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {SCHEMA}")
        spark.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{TABLE}")
        spark.sql(
            f"CREATE TABLE {SCHEMA}.{TABLE} ({q(ORDER_ID)} BIGINT, {q(CUSTOMER)} STRING, "
            "amount DECIMAL(10,2), score DOUBLE, ordered_at TIMESTAMP, day DATE, paid BOOLEAN)"
            " USING parquet"
        )
        spark.sql(
            f"INSERT INTO {SCHEMA}.{TABLE} VALUES "
            "(1, 'O''Brien', 12.50, 0.5, TIMESTAMP '2024-01-02 03:04:05 UTC', "
            "DATE '2024-01-02', true), "
            "(2, NULL, NULL, double('NaN'), NULL, NULL, NULL), "
            "(3, 'Zoë \"Z\"', 99999999.99, -1.0, TIMESTAMP '2024-06-30 23:59:59.123456 UTC', "
            "DATE '2024-06-30', false)"
        )
        spark.sql(
            f"INSERT INTO {SCHEMA}.{TABLE} SELECT id + 10, concat('customer ', id), "
            "CAST(id AS DECIMAL(10,2)), CAST(id AS DOUBLE), TIMESTAMP '2024-01-01 00:00:00 UTC',"
            f" DATE '2024-01-01', id % 2 = 0 FROM range(0, {GENERATED_ROWS})"
        )
    finally:
        spark.stop()
    return spark_endpoint


@pytest.fixture
def connector(orders) -> SparkConnector:
    return SparkConnector(endpoint=orders, schema_name=SCHEMA, table_name=TABLE, label="lake")


def _select(connector: SparkConnector) -> str:
    names = ", ".join(connector.quote_ident(name) for name, _ in COLUMNS)
    return f"SELECT {names} FROM {connector.relation_sql()}"


def test_describe_gives_spark_type_names_in_order(connector):
    columns = connector.describe()

    assert [(c.name, c.data_type) for c in columns] == COLUMNS
    assert [c.position for c in columns] == list(range(len(COLUMNS)))
    assert all(c.nullable for c in columns)  # Parquet tables: Spark enforces no NOT NULL
    assert connector.relation_sql() == "`portal_test`.`orders`"


def test_fetch_binds_parameters_and_reads_awkward_values_back(connector):
    q = connector.quote_ident
    sql = f"{_select(connector)} WHERE {q(CUSTOMER)} = ? OR {q(ORDER_ID)} = ? ORDER BY 1"

    first, second = connector.fetch(sql, ["O'Brien", 2])

    assert first == (
        1,
        "O'Brien",
        Decimal("12.50"),
        0.5,
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        date(2024, 1, 2),
        True,
    )
    assert second[0] == 2 and math.isnan(second[3])
    assert second[:3] == (2, None, None) and second[4:] == (None, None, None)
    # A value is bound, never spliced into the statement.
    assert connector.fetch(sql, ["x' OR '1'='1", -1]) == []


def test_fetch_with_names_and_typed_parameters(connector):
    q = connector.quote_ident
    names, rows = connector.fetch_with_names(
        f"SELECT {q(ORDER_ID)}, {q(CUSTOMER)} AS who FROM {connector.relation_sql()} "
        "WHERE ordered_at >= ? AND amount > ? AND paid = ? AND day = ? ORDER BY 1",
        [datetime(2024, 6, 1, tzinfo=UTC), Decimal("99.5"), False, date(2024, 6, 30)],
    )
    assert names == [ORDER_ID, "who"]
    assert rows == [(3, 'Zoë "Z"')]
    # A naive datetime is read as UTC, as the sessions are, whatever the host's zone.
    naive = connector.fetch(
        f"SELECT count(*) FROM {connector.relation_sql()} WHERE ordered_at = ?",
        [datetime(2024, 1, 2, 3, 4, 5)],
    )
    assert naive == [(1,)]


def test_arrow_batches_arrive_in_batches_of_at_most_batch_rows(connector):
    batches = list(connector.arrow_batches(f"{_select(connector)} ORDER BY 1", [], batch_rows=4))

    assert len(batches) >= 6 and all(b.num_rows <= 4 for b in batches)
    assert sum(b.num_rows for b in batches) == 3 + GENERATED_ROWS
    schema = batches[0].schema
    assert schema.names == [name for name, _ in COLUMNS]
    assert str(schema.field("amount").type) == "decimal128(10, 2)"
    assert str(schema.field("ordered_at").type) == "timestamp[us, tz=UTC]"
    ids = [value for b in batches for value in b.column(0).to_pylist()]
    assert ids == [1, 2, 3, *range(10, 10 + GENERATED_ROWS)]


def test_an_empty_result_is_one_empty_batch_with_the_columns(connector):
    q = connector.quote_ident
    batches = list(
        connector.arrow_batches(
            f"{_select(connector)} WHERE {q(ORDER_ID)} < ?", [0], batch_rows=100
        )
    )
    assert [b.num_rows for b in batches] == [0]
    assert batches[0].schema.names == [name for name, _ in COLUMNS]
    assert str(batches[0].schema.field("ordered_at").type) == "timestamp[us, tz=UTC]"


def test_schemas_and_relations_list_the_catalog(connector):
    assert {"default", SCHEMA} <= set(connector.schemas())
    assert connector.relations(SCHEMA) == [TABLE]
    assert connector.relations(f"spark_catalog.{SCHEMA}") == [TABLE]


def test_a_missing_table_or_column_is_relation_missing(orders):
    missing = SparkConnector(endpoint=orders, schema_name=SCHEMA, table_name="nope", label="lake")
    with pytest.raises(RelationMissing) as error:
        missing.describe()
    assert "portal_test.nope" in str(error.value)
    assert "TABLE_OR_VIEW_NOT_FOUND" in error.value.detail
    assert "JVM" not in error.value.detail  # Spark's first line, not its stack trace

    with pytest.raises(RelationMissing):
        missing.fetch(f"SELECT count(*) FROM {missing.relation_sql()}")
    with pytest.raises(RelationMissing):
        SparkConnector(endpoint=orders, schema_name="no_such_schema", table_name="t").describe()
    present = SparkConnector(endpoint=orders, schema_name=SCHEMA, table_name=TABLE)
    with pytest.raises(RelationMissing) as error:
        present.fetch(f"SELECT no_such_column FROM {present.relation_sql()}")
    assert "UNRESOLVED_COLUMN" in error.value.detail


def test_an_unreachable_server_is_a_clear_error_and_fails_fast():
    port = free_port()  # nothing listens there
    connector = SparkConnector(
        endpoint=SparkEndpoint(host="127.0.0.1", port=port), table_name="t", label="lake"
    )
    started = time.monotonic()
    with pytest.raises(ConnectorError) as error:
        connector.fetch("SELECT 1")

    assert str(error.value) == "Data source 'lake' could not be reached."
    assert f"127.0.0.1:{port}" in error.value.detail
    assert "onnect" in error.value.detail  # gRPC's reason: failed to connect, refused
    assert time.monotonic() - started < 15


def test_a_statement_past_its_time_limit_is_interrupted_on_the_server(connector):
    started = time.monotonic()
    with pytest.raises(ConnectorError) as error:
        connector.fetch(SLOW_QUERY, timeout_seconds=1.5)

    assert "cancelled after its time limit" in str(error.value)
    assert "OPERATION_CANCELED" in error.value.detail
    assert time.monotonic() - started < 20
    # The session goes on serving.
    assert connector.fetch("SELECT ? + 1", [1]) == [(2,)]


def test_interrupt_stops_a_stream_from_another_thread(connector):
    """What a federated query's cancel does (sharing.federation.services.running)."""
    outcome: dict = {}

    def read() -> None:
        try:
            list(connector.arrow_batches(SLOW_QUERY, [], batch_rows=10))
        except ConnectorError as exc:
            outcome["error"] = exc

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 20
    while not connector._tags and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the statement reaches the server
    connector.interrupt()
    reader.join(timeout=20)

    assert not reader.is_alive()
    assert str(outcome["error"]) == "The query on 'lake' was cancelled."


def test_only_one_read_only_query_is_sent(connector):
    relation = connector.relation_sql()
    for statement in (
        f"DROP TABLE {relation}",
        f"SELECT 1; DROP TABLE {relation}",
        f"WITH a AS (SELECT 1 AS x) INSERT INTO {relation} SELECT * FROM a",
        "SET spark.sql.runSQLOnFiles = true",
        f"CACHE TABLE {relation}",
    ):
        with pytest.raises(ConnectorError) as error:
            connector.fetch(statement)
        assert "read-only query" in str(error.value) or "one query" in str(error.value)
    assert len(connector.describe()) == len(COLUMNS)  # still there


def test_files_cannot_be_queried_by_path(connector, spark_server):
    """`parquet.`/path`` would read any file the server can: the sessions turn it off."""
    with pytest.raises(ConnectorError) as error:
        connector.fetch(f"SELECT count(*) FROM parquet.`{spark_server.warehouse}`")
    assert "TABLE_OR_VIEW_NOT_FOUND" in error.value.detail  # not a file any more


def test_a_port_on_a_spark_source_reads_through_connector_for_port(orders, domain):
    source = SparkSourceFactory(host="127.0.0.1", port=orders.port)
    port = OutputPortFactory(source=source, schema_name=SCHEMA, table_name=TABLE)

    with connector_for_port(port) as connector:
        assert isinstance(connector, SparkConnector)
        assert [c.name for c in connector.describe()] == [name for name, _ in COLUMNS]
        assert connector.fetch(f"SELECT count(*) FROM {connector.relation_sql()}") == [
            (3 + GENERATED_ROWS,)
        ]


def test_people_choosing_a_spark_table_see_its_schemas_and_tables(orders, domain):
    source = SparkSourceFactory(host="127.0.0.1", port=orders.port, domains=[domain])
    found = source_relations(source=source, domain=domain, schema_name=SCHEMA)
    assert {"default", SCHEMA} <= set(found["schemas"])
    assert found["tables"] == [TABLE]

    port = OutputPortFactory(source=source, schema_name=SCHEMA, table_name="order")
    assert port_relation_problem(port) == (
        f"There is no table or view {SCHEMA}.order on data source {source.name!r}. "
        "Did you mean orders?"
    )


def test_sync_keys_are_the_same_json_text_as_in_python(connector):
    """A sync's key (sharing.syncs.planning.key_sql) on Spark is the text Python's
    key_text writes of the same values: compact JSON, each value as text, NULL as null."""
    from sharing.syncs.planning import key_sql, key_text

    q = connector.quote_ident
    rows = connector.fetch(
        f"SELECT {key_sql(connector, [ORDER_ID, CUSTOMER])}, {q(ORDER_ID)}, {q(CUSTOMER)} "
        f"FROM {connector.relation_sql()} WHERE {q(ORDER_ID)} < 4 ORDER BY 2"
    )
    assert [key for key, *_ in rows] == [key_text(values) for _, *values in rows]
    assert rows[1][0] == '["2",null]' and rows[0][0] == '["1","O\'Brien"]'


def test_a_table_another_application_writes_is_read_as_it_is_now(orders):
    """The process's session keeps a Parquet table's file list from its first read: each
    connector (one check run, one read) refreshes its table first, so rows appended by
    another session are counted and a table rewritten by one still reads (its old files
    are gone). A federated statement refreshes each other table it names."""
    q = SparkConnector.quote_ident
    writer = spark_session_open(orders)
    try:
        writer.sql(f"DROP TABLE IF EXISTS {SCHEMA}.appended")
        writer.sql(f"CREATE TABLE {SCHEMA}.appended (n BIGINT) USING parquet")
        writer.sql(f"INSERT INTO {SCHEMA}.appended VALUES (1), (2)")

        def count() -> int:
            reader = SparkConnector(endpoint=orders, schema_name=SCHEMA, table_name="appended")
            return reader.fetch(f"SELECT count(*) FROM {reader.relation_sql()}")[0][0]

        assert count() == 2  # the process's session has now listed the table's files
        writer.sql(f"INSERT INTO {SCHEMA}.appended VALUES (3)")
        assert count() == 3
        writer.sql(f"INSERT OVERWRITE {SCHEMA}.appended VALUES (7)")
        assert count() == 1

        source = SparkConnector(endpoint=orders, label="lake")  # the source's, no table
        other = f"{q(SCHEMA)}.{q('appended')}"
        writer.sql(f"INSERT INTO {SCHEMA}.appended VALUES (8)")
        source.relation_refresh(other)
        assert source.fetch(f"SELECT sum(n) FROM {other}")[0][0] == 15
    finally:
        writer.sql(f"DROP TABLE IF EXISTS {SCHEMA}.appended")
        writer.stop()
