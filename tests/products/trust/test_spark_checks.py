"""Checks, failing-row samples, custom SQL checks and monitors on a Spark port, pushed down
as Spark SQL, measured against the ground truth of test_checks_truth.py: the same defect
table (NULL, NaN, boundaries, decimals, UTC and wall-clock timestamps, names that need
quoting: `amount ` beside `amount`, `Order ID`, `a"b`, `select`) written to Spark and, in
the same test, to a DuckDB file, the same checks defined through the API on both. Every
observed value, outcome and failing-row sample must be the ground truth's and DuckDB's.

One Spark table for the module, written once; the checks run once per engine."""

from datetime import UTC, timedelta

import duckdb
import pytest
from django.utils import timezone

from products.catalog.services.ports import port_connector
from products.catalog.services.schema_refresh import schema_refresh_execute, schema_refresh_request
from products.choices import SourceKind
from products.connectors import ConnectorError
from products.connectors.spark import SparkConnector, SparkEndpoint, spark_session_open
from products.connectors.spark_server import free_port
from products.trust.services import checks as checks_service
from products.trust.services.check_sql import CheckSQL
from products.trust.services.custom_sql import (
    CustomSQLRefused,
    custom_sql_timed_out,
    custom_sql_validate,
)
from products.trust.services.monitors import port_observe
from tests.factories import DataSourceFactory, OutputPortFactory, ProductFactory, SparkSourceFactory
from tests.products.trust.test_checks_truth import (
    CHECKS,
    COLUMNS,
    DEFECTS,
    _arrow,
    _defect_rows,
    _define_suite,
    _run,
)

pytestmark = [pytest.mark.spark, pytest.mark.django_db]

SCHEMA = "trust_spark"
TABLE = "defects"
NOW = timezone.now()  # the tables' timestamps are relative to it (freshness: 30 h, 10 h)

# Spark's type of each column of test_checks_truth.COLUMNS (by its PostgreSQL type).
SPARK_TYPES = {
    "bigint": "BIGINT",
    "numeric(12,2)": "DECIMAL(12,2)",
    "double precision": "DOUBLE",
    "text": "STRING",
    "integer": "INT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp with time zone": "TIMESTAMP",  # an instant (timestamp_ltz)
    "timestamp without time zone": "TIMESTAMP_NTZ",  # wall-clock time, read as UTC
}

# Beyond the truth suite: NaN is a value, not a NULL; NaN is one value to a unique check;
# custom SQL counted in the aggregate's scan, and one that runs alone. Each engine's
# custom SQL quotes `Order ID` its own way.
EXTRA_CHECKS = [
    ("ratio not null", {"kind": "not_null", "column": "ratio"}, "warn"),
    ("unique ratio", {"kind": "unique", "column": "ratio"}, "warn"),
    (
        "nan or no order id",
        {"kind": "custom_sql", "params": {"sql": "SELECT count(*) FROM {table} "
                                                 "WHERE isnan(ratio) OR {order_id} IS NULL"}},
        "warn",
    ),
    (
        "duplicated keys",
        {"kind": "custom_sql", "params": {"sql": "SELECT count(*) FROM (SELECT id FROM {table} "
                                                 "GROUP BY id HAVING count(*) > 1) AS d"}},
        "warn",
    ),
]  # fmt: skip
EXTRA_TRUTH = {
    "ratio not null": ("fail", 1, {6}),  # the NULL only: the NaN (row 4) is a value
    # 9 values, 4 distinct (0, 1, NaN, 0.5): 5 duplicates
    "unique ratio": ("fail", 5, {1, 2, 3, 5, 7, 8, 10}),
    "nan or no order id": ("fail", 2, None),  # rows 4 (NaN) and 5 (NULL)
    "duplicated keys": ("fail", 2, None),  # ids 3 and 7
}
# Long enough to outlast a time limit of a second (as in tests/products/connectors/test_spark.py).
SLOW_QUERY = "SELECT count(*) FROM range(0, 50000000000) AS a"
QUOTED_ORDER_ID = {"spark": "`Order ID`", "duckdb": '"Order ID"'}


@pytest.fixture(scope="module", autouse=True)
def _now_at_start():
    """NOW is when this module's tests start, not when the suite was collected (minutes
    earlier in a full run): the tables are written relative to it and freshness is
    measured against the clock."""
    global NOW
    NOW = timezone.now()


@pytest.fixture(scope="module")
def endpoint(spark_server) -> SparkEndpoint:
    """trust_spark.defects: test_checks_truth's defect rows, written once for the module
    through a session of its own (the connector only reads)."""
    from pyspark.sql.types import (  # loaded with the Spark session above
        BooleanType,
        DateType,
        DecimalType,
        DoubleType,
        IntegerType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampNTZType,
        TimestampType,
    )

    types = {
        "BIGINT": LongType(),
        "DECIMAL(12,2)": DecimalType(12, 2),
        "DOUBLE": DoubleType(),
        "STRING": StringType(),
        "INT": IntegerType(),
        "BOOLEAN": BooleanType(),
        "DATE": DateType(),
        "TIMESTAMP": TimestampType(),
        "TIMESTAMP_NTZ": TimestampNTZType(),
    }
    schema = StructType(
        [StructField(name, types[SPARK_TYPES[pg_type]]) for name, pg_type, _ in COLUMNS]
    )
    endpoint = SparkEndpoint(host="127.0.0.1", port=spark_server.port)
    spark = spark_session_open(endpoint)
    try:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {SCHEMA}")
        spark.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{TABLE}")
        frame = spark.createDataFrame(_defect_rows(NOW), schema=schema)
        frame.write.format("parquet").saveAsTable(f"{SCHEMA}.{TABLE}")
    finally:
        spark.stop()
    return endpoint


def _product(domain, owner, slug: str, **port_fields):
    product = ProductFactory(domain=domain, name=f"Trust {slug}", slug=slug, owners=[owner])
    port = OutputPortFactory(product=product, slug=slug, **port_fields)
    refresh = schema_refresh_execute(run_id=schema_refresh_request(port=port, by=owner).pk)
    assert refresh.status == "succeeded", refresh.error
    return product, port


@pytest.fixture
def spark_product(endpoint, domain, owner):
    source = SparkSourceFactory(host="127.0.0.1", port=endpoint.port)
    return _product(domain, owner, "spark-defects", source=source, schema_name=SCHEMA,
                    table_name=TABLE)  # fmt: skip


@pytest.fixture
def duckdb_product(domain, owner, tmp_path):
    path = tmp_path / "defects.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("incoming", _arrow(_defect_rows(NOW)))
        con.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM incoming")
    source = DataSourceFactory(kind=SourceKind.DUCKDB, path=str(path))
    return _product(domain, owner, "duckdb-defects", source=source, schema_name="main",
                    table_name=TABLE)  # fmt: skip


@pytest.fixture
def owner_api(api_client, owner):
    api_client.force_authenticate(owner)
    return api_client


def _define_extras(client, product, engine: str) -> None:
    for name, spec, severity in EXTRA_CHECKS:
        if spec["kind"] == "custom_sql":
            sql = spec["params"]["sql"].replace("{order_id}", QUOTED_ORDER_ID[engine])
            spec = {**spec, "params": {"sql": sql}}
        response = client.post(
            f"/api/v1/products/{product.key}/checks/",
            {"name": name, "severity": severity, **spec},
            format="json",
        )
        assert response.status_code == 201, (name, response.json())


def _measured(body: dict) -> dict:
    """check name -> (outcome, observed value, failing rows, the sample's row numbers)."""
    return {
        result["check_name"]: (
            result["outcome"],
            round(result["observed_value"], 1) if result["observed_value"] is not None else None,
            result["failing_rows"],
            sorted(row["row_no"] for row in result["sample"] or []),
        )
        for result in body["results"]
    }


def test_checks_on_spark_count_what_duckdb_and_the_ground_truth_count(
    spark_product, duckdb_product, owner_api
):
    measured = {}
    bodies = {}
    for engine, (product, _) in (("spark", spark_product), ("duckdb", duckdb_product)):
        _define_suite(owner_api, product)
        _define_extras(owner_api, product, engine)
        bodies[engine] = _run(owner_api, product)
        measured[engine] = _measured(bodies[engine])

    spark, body = measured["spark"], bodies["spark"]
    assert body["row_count"] == 10
    assert (body["errored"], body["failed"]) == (0, 18)
    truth = DEFECTS | EXTRA_TRUTH
    assert set(spark) == set(truth) == {name for name, _, _ in CHECKS + EXTRA_CHECKS}
    for name, (outcome, observed, failing_rows) in truth.items():
        got_outcome, got_observed, got_failing, got_sample = spark[name]
        assert got_outcome == outcome, (name, spark[name])
        if name.startswith("fresh"):
            assert got_observed == pytest.approx(observed, abs=0.1), name
            continue
        assert got_observed == observed, (name, spark[name])
        if name != "rows":
            assert got_failing == observed, name
        if failing_rows is not None:
            assert set(got_sample) == failing_rows, (name, got_sample)
    # The same numbers, outcomes and samples as DuckDB's on the same rows.
    assert spark == measured["duckdb"]

    results = {result["check_name"]: result for result in body["results"]}
    # Samples carry the awkward names verbatim, and NaN as "NaN".
    [seven_fifty, twelve] = sorted(results["amount accepted"]["sample"], key=lambda r: r["row_no"])
    assert (seven_fifty["amount "], twelve["amount "]) == ("7.50", "12.00")
    assert seven_fifty["amount"] == 99.5
    assert {row['a"b'] for row in results["quote pattern"]["sample"]} == {"ab", "A1"}
    assert [row["Order ID"] for row in results["order id not null"]["sample"]] == [None]
    assert [row["ratio"] for row in results["ratio range"]["sample"]] == ["NaN"]
    # Freshness in UTC: an instant column and a wall-clock one.
    newest = (NOW - timedelta(hours=30)).astimezone(UTC)
    assert results["fresh tz"]["message"].startswith(f"Newest value {newest:%Y-%m-%d %H:%M} UTC")
    assert results["fresh naive"]["observed_value"] == pytest.approx(10, abs=0.1)


def test_the_aggregate_is_one_spark_statement_for_every_built_in_check(spark_product, owner):
    """Every built-in check and the counted custom SQL in one scan written for Spark (a
    cast to STRING, RLIKE, isnan), but `unique`: no count(DISTINCT) beside the other
    aggregates (Spark would copy every row per distinct group), one grouping statement
    of its own giving the duplicates and the first duplicated keys, ascending."""
    _, port = spark_product
    for name, spec, _ in CHECKS + EXTRA_CHECKS[:2]:
        checks_service.check_create(port=port, by=owner, name=name, **spec)
    with port_connector(port) as connector:
        assert isinstance(connector, SparkConnector)
        types = {column.name: column.data_type for column in connector.describe()}
        sql = CheckSQL(connector, column_types=types)
        checks = list(port.checks.all())
        plan = sql.aggregate_plan(checks, extra_max_column="created_at")
        row = connector.fetch(plan.sql, plan.params)[0]
        unique = {c.name: connector.fetch(sql.unique_statement(c))[0] for c in checks
                  if c.kind == "unique"}  # fmt: skip
    assert "VARCHAR" not in plan.sql and "FILTER (WHERE" in plan.sql
    assert "RLIKE" in plan.sql and "DISTINCT" not in plan.sql
    by_name = {check.name: row[plan.slots[check.pk]] for check in checks if check.pk in plan.slots}
    assert "unique id" not in by_name and "unique ratio" not in by_name
    assert unique["unique id"] == (3, [3, 7])
    duplicates, keys = unique["unique ratio"]  # 9 values, 4 distinct: 0 and 1 repeated
    assert duplicates == 5 and keys == [0.0, 1.0]
    assert by_name["ratio not null"] == 1 and by_name["ratio range"] == 1
    assert row[0] == 10 and row[-1] == (NOW - timedelta(hours=30)).astimezone(UTC)


def test_a_spark_statement_stopped_at_its_time_limit_is_told_apart(spark_product):
    """What a custom check past its time limit says (the connector interrupts it on the
    server), not a failure of the source. The statement is the connector's own: a check's
    SQL cannot name range(), and a join of the port with itself outlives its interrupt."""
    _, port = spark_product
    with port_connector(port) as connector:
        with pytest.raises(ConnectorError) as stopped:
            connector.fetch(SLOW_QUERY, timeout_seconds=1)
        with pytest.raises(ConnectorError) as failed:
            connector.fetch(f"SELECT count(*) FROM {connector.relation_sql()} WHERE 1 / 0 > 1")
    assert custom_sql_timed_out(stopped.value)
    assert not custom_sql_timed_out(failed.value)


def test_monitors_observe_a_spark_port_and_its_outage(spark_product, domain, owner):
    _, port = spark_product
    port.freshness_column = "created_at"
    port.save(update_fields=["freshness_column"])

    observation = port_observe(port=port, now=NOW)

    assert observation.available and observation.row_count == 10
    assert observation.newest_at == NOW - timedelta(hours=30)
    assert observation.freshness_lag_seconds == pytest.approx(30 * 3600, abs=1)

    gone = SparkSourceFactory(host="127.0.0.1", port=free_port())
    _, lost = _product(domain, owner, "spark-gone", source=port.source, schema_name=SCHEMA,
                       table_name=TABLE)  # fmt: skip
    lost.source = gone
    lost.save(update_fields=["source"])
    observation = port_observe(port=lost, now=NOW)
    assert not observation.available and observation.row_count is None
    assert "could not be reached" in observation.error or "Cannot connect" in observation.error


# --- what custom SQL may not do on Spark -----------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT count(*) FROM {table} WHERE reflect('java.lang.System', 'getenv', 'X') = 'a'",
         "reflect()"),
        ("SELECT count(*) FROM {table} WHERE java_method('java.lang.Math', 'random') > 0.5",
         "java_method()"),
        ("SELECT count(*) FROM {table} WHERE try_reflect('java.lang.System', 'exit', 1) IS NULL",
         "try_reflect()"),
        ("SELECT count(*) FROM {table} WHERE input_file_name() LIKE '%x%'", "input_file_name()"),
        ("SELECT count(*) FROM read_files('/etc/passwd')", "read_files()"),
        ("SELECT count(*) FROM parquet.`/tmp/secret.parquet`", "parquet./tmp/secret.parquet"),
        ("SELECT count(*) FROM json.`/etc`", "json./etc"),
        ("SELECT count(*) FROM IDENTIFIER('other.table')", "identifier()"),
        ("SELECT TRANSFORM(id) USING 'cat' FROM {table}", "QUERYTRANSFORM"),
        ("SELECT count(*) FROM {table} LATERAL VIEW explode(array(1)) x AS e", "LATERAL"),
        ("SELECT count(*) FROM {table} VERSION AS OF 1", "version"),
        ("SELECT count(*) FROM {table} TABLESAMPLE (10 PERCENT)", "sample"),
        ("SELECT count(*) FROM {table} WHERE current_user() = 'a'", "current_user()"),
        ("SELECT count(*) FROM {table} WHERE current_user = 'a'", "current_user()"),
        ("SELECT count(*) FROM {table} WHERE 'x' = '${env:HOME}'", "${...}"),
        ("SELECT count(*) FROM {table} WHERE `${spark.app.name}` = 1", "${...}"),
        ("SELECT count(*) FROM other.orders", "other.orders"),
        ("SELECT count(*) FROM {table} WHERE id = ?", "parameter"),
    ],
)  # fmt: skip
def test_custom_sql_on_spark_is_refused_outside_the_allow_list(sql, words):
    with pytest.raises(CustomSQLRefused) as refused:
        custom_sql_validate(sql, dialect="spark")
    assert words.lower() in str(refused.value).lower(), str(refused.value)


def test_spark_reads_the_variables_refused_above(endpoint):
    """Why `${` is refused: Spark replaces it in the text, strings included."""
    spark = spark_session_open(endpoint)
    try:
        [row] = spark.sql("SELECT '${spark.sql.session.timeZone}' AS zone").collect()
    finally:
        spark.stop()
    assert row.zone == "UTC"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM {table} WHERE `Order ID` IS NULL OR isnan(ratio)",
        "SELECT count_if(ratio RLIKE '^0') FROM {table}",
        "SELECT sum(if(nvl(score, 0) > 5, 1, 0)) FROM {table} AS t",
        "WITH d AS (SELECT id FROM {table} GROUP BY id HAVING count(*) > 1) SELECT count(*) FROM d",
        "SELECT count(*) FROM {table} WHERE CAST(`amount ` AS STRING) LIKE '1%'",
    ],
)
def test_spark_custom_sql_in_the_allow_list_is_accepted(sql):
    custom_sql_validate(sql, dialect="spark")
