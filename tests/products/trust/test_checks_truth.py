"""Checks measured against ground truth, on PostgreSQL, a DuckDB database and a Parquet file.

Each table has injected defects of known counts (and a clean twin and an empty twin), awkward
column names (`amount ` with a trailing space beside an `amount`, `Order ID`, `a"b`, the
reserved word `select`), boundaries, NULL and NaN, decimals (5.00 against 5), doubles (0.0
against 0), timestamps with and without a time zone. Checks are defined and run through the
public API (the run executed as the worker does) and read back as a reader would: every
observed value, the failing-row samples, the incidents opened and the trust score's quality
component, which must be what docs/trust-score.md's formula gives for these results.
"""

import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from products.catalog.services.ports import columns_declare
from products.catalog.services.schema_refresh import schema_refresh_execute, schema_refresh_request
from products.choices import SourceKind
from products.trust.tasks import check_run
from sharing.access.services.common import clean_columns
from tests.factories import (
    DataSourceFactory,
    FilePortFactory,
    OutputPortFactory,
    ProductFactory,
    metadata_db_connect,
    metadata_db_source,
    parquet_product,
)

pytestmark = pytest.mark.django_db

ENGINES = ["postgresql", "duckdb", "parquet"]
NAN = float("nan")
D = Decimal

# name, PostgreSQL type, Arrow type (DuckDB tables and Parquet files are written from Arrow)
COLUMNS = [
    ("row_no", "bigint", pa.int64()),
    ("id", "bigint", pa.int64()),
    ("amount ", "numeric(12,2)", pa.decimal128(12, 2)),
    ("amount", "double precision", pa.float64()),
    ("Order ID", "bigint", pa.int64()),
    ('a"b', "text", pa.string()),
    ("select", "text", pa.string()),
    ("ratio", "double precision", pa.float64()),
    ("score", "integer", pa.int32()),
    ("price", "numeric(12,2)", pa.decimal128(12, 2)),
    ("flag", "boolean", pa.bool_()),
    ("day", "date", pa.date32()),
    ("created_at", "timestamp with time zone", pa.timestamp("us", tz="UTC")),
    ("local_time", "timestamp without time zone", pa.timestamp("us")),
]
NAMES = [name for name, _, _ in COLUMNS]
JAN1, JAN2, JAN3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)


def _defect_rows(now: datetime) -> list[tuple]:
    """10 rows; the defects each check must count are noted beside its column below."""
    tz = [now - timedelta(hours=30 + i) for i in range(10)]  # newest 30 hours old
    naive = [(now - timedelta(hours=10 + i)).replace(tzinfo=None) for i in range(10)]
    columns = {
        "row_no": list(range(1, 11)),
        "id": [1, 2, 3, 3, 5, 6, 7, 7, 7, 10],  # 3 extra rows share a key (rows 3,4,7,8,9)
        # accepted [5, 10]: 7.50 and 12.00 fail (rows 4, 9); the NULL (row 6) is not failing
        "amount ": [D("5.00"), D("10.00"), D("5.00"), D("7.50"), D("10.00"), None, D("5.00")]
        + [D("5.00"), D("12.00"), D("10.00")],
        "amount": [99.5] * 10,  # a check trimmed to this column would count 10
        "Order ID": [101, 102, 103, 104, None, 106, 107, 108, 109, 110],  # 1 null (row 5)
        'a"b': ["AB", "CD", "ab", "EF", "A1", "GH", None, "IJ", "KL", "MN"],  # rows 3, 5
        "select": ["x", "y", "x", "z", "y", None, "x", "x", "y", "x"],  # row 4
        # accepted [0, 1]: NaN and 0.5 fail (rows 4, 9); range [0, 1]: NaN fails (row 4)
        "ratio": [0.0, 1.0, 0.0, NAN, 1.0, None, 0.0, 1.0, 0.5, 0.0],
        "score": [1, 10, 5, 0, 11, 5, 5, 5, None, 5],  # range [1, 10]: rows 4, 5
        # range [0, 99.99]: 100.00 fails (row 3); 99.99 and 0.00 are on the bounds
        "price": [D("99.99"), D("0.00"), D("100.00")] + [D(f"{i}.00") for i in range(1, 8)],
        "flag": [True, True, False, True, True, None, True, False, True, True],  # rows 3, 8
        "day": [JAN1, JAN2, JAN1, JAN3, JAN1, JAN1, None, JAN2, JAN1, JAN1],  # row 4
        "created_at": tz,
        "local_time": naive,
    }
    return list(zip(*(columns[name] for name in NAMES), strict=True))


def _clean_rows(now: datetime) -> list[tuple]:
    """The defects' twin: the same awkward names and boundaries, nothing failing."""
    columns = {
        "row_no": list(range(1, 11)),
        "id": list(range(1, 11)),
        "amount ": [D("5.00"), D("10.00")] * 5,
        "amount": [99.5] * 10,
        "Order ID": list(range(101, 111)),
        'a"b': ["AB"] * 9 + [None],
        "select": ["x", "y"] * 5,
        "ratio": [0.0, 1.0, None, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0],
        "score": [1, 10, 2, 3, 4, 5, 6, 7, 8, 9],
        "price": [D("99.99"), D("0.00")] + [D(f"{i}.50") for i in range(1, 9)],
        "flag": [True] * 9 + [None],
        "day": [JAN1, JAN2] * 5,
        "created_at": [now - timedelta(hours=1 + i) for i in range(10)],
        "local_time": [(now - timedelta(hours=2 + i)).replace(tzinfo=None) for i in range(10)],
    }
    return list(zip(*(columns[name] for name in NAMES), strict=True))


# The suite: (name, definition, severity). Defined through the API, as a client would.
CHECKS = [
    ("unique id", {"kind": "unique", "column": "id"}, "error"),
    (
        "amount accepted",
        {"kind": "accepted_values", "column": "amount ", "params": {"values": [5, "10.0"]}},
        "error",
    ),  # noqa: E501
    ("amount not null", {"kind": "not_null", "column": "amount "}, "error"),
    ("order id not null", {"kind": "not_null", "column": "Order ID"}, "warn"),
    (
        "quote pattern",
        {"kind": "pattern", "column": 'a"b', "params": {"regex": "^[A-Z]{2}$"}},
        "error",
    ),  # noqa: E501
    (
        "select accepted",
        {"kind": "accepted_values", "column": "select", "params": {"values": ["x", "y"]}},
        "error",
    ),  # noqa: E501
    (
        "ratio accepted",
        {"kind": "accepted_values", "column": "ratio", "params": {"values": [0, 1]}},
        "error",
    ),  # noqa: E501
    (
        "ratio accepted with NaN",
        {"kind": "accepted_values", "column": "ratio", "params": {"values": ["0", 1.0, "NaN"]}},
        "warn",
    ),  # noqa: E501
    ("ratio range", {"kind": "range", "column": "ratio", "params": {"min": 0, "max": 1}}, "warn"),
    ("score range", {"kind": "range", "column": "score", "params": {"min": 1, "max": 10}}, "error"),
    (
        "price range",
        {"kind": "range", "column": "price", "params": {"min": 0, "max": 99.99}},
        "error",
    ),  # noqa: E501
    (
        "flag accepted",
        {"kind": "accepted_values", "column": "flag", "params": {"values": [True]}},
        "error",
    ),  # noqa: E501
    (
        "day accepted",
        {
            "kind": "accepted_values",
            "column": "day",
            "params": {"values": ["2024-01-01", "2024-01-02"]},
        },
        "error",
    ),  # noqa: E501
    ("rows", {"kind": "row_count", "params": {"min": 1}}, "error"),
    (
        "fresh tz",
        {"kind": "freshness", "column": "created_at", "params": {"max_age_hours": 24}},
        "error",
    ),  # noqa: E501
    (
        "fresh naive",
        {"kind": "freshness", "column": "local_time", "params": {"max_age_hours": 24}},
        "error",
    ),  # noqa: E501
]
SEVERITY = {name: severity for name, _, severity in CHECKS}
WEIGHTS = {"error": 2, "warn": 1}  # docs/trust-score.md

# Ground truth: check -> (outcome, observed value, row_no of the failing rows).
DEFECTS = {
    "unique id": ("fail", 3, {3, 4, 7, 8, 9}),
    "amount accepted": ("fail", 2, {4, 9}),
    "amount not null": ("fail", 1, {6}),
    "order id not null": ("fail", 1, {5}),
    "quote pattern": ("fail", 2, {3, 5}),
    "select accepted": ("fail", 1, {4}),
    "ratio accepted": ("fail", 2, {4, 9}),
    "ratio accepted with NaN": ("fail", 1, {9}),
    "ratio range": ("fail", 1, {4}),
    "score range": ("fail", 2, {4, 5}),
    "price range": ("fail", 1, {3}),
    "flag accepted": ("fail", 2, {3, 8}),
    "day accepted": ("fail", 1, {4}),
    "rows": ("pass", 10, set()),
    "fresh tz": ("fail", 30, set()),
    "fresh naive": ("pass", 10, set()),
}
CLEAN = {name: ("pass", 0, set()) for name in DEFECTS} | {
    "rows": ("pass", 10, set()),
    "fresh tz": ("pass", 1, set()),
    "fresh naive": ("pass", 2, set()),
}
EMPTY = {name: ("pass", 0, set()) for name in DEFECTS} | {
    "rows": ("fail", 0, set()),
    "fresh tz": ("fail", None, set()),  # no values: nothing to be fresh
    "fresh naive": ("fail", None, set()),
}


# --- the three engines ---------------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _arrow(rows: list[tuple]) -> pa.Table:
    return pa.table(
        {
            name: pa.array([row[i] for row in rows], type=arrow_type, from_pandas=False)
            for i, (name, _, arrow_type) in enumerate(COLUMNS)
        }
    )


def _pg_table(postgres, table: str, rows: list[tuple]) -> None:
    columns = ", ".join(f"{_quote(name)} {pg_type}" for name, pg_type, _ in COLUMNS)
    marks = ", ".join(["%s"] * len(COLUMNS))
    with metadata_db_connect() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS truth_test")
        conn.execute(f"DROP TABLE IF EXISTS truth_test.{table}")
        conn.execute(f"CREATE TABLE truth_test.{table} ({columns})")
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO truth_test.{table} VALUES ({marks})", rows)


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


@pytest.fixture
def make_product(request, engine, domain, owner, media_root, tmp_path):
    """A published product of the domain with one port on `rows`, its schema refreshed
    from the source (the column types are the engine's own names)."""

    def make(table: str, rows: list[tuple]):
        product = ProductFactory(
            domain=domain, name=f"Truth {table}", slug=f"truth-{table}", owners=[owner]
        )
        if engine == "postgresql":
            _pg_table(request.getfixturevalue("postgres"), table, rows)
            port = OutputPortFactory(
                product=product,
                slug=table,
                source=metadata_db_source(),
                schema_name="truth_test",
                table_name=table,
            )
        elif engine == "duckdb":
            path = tmp_path / f"{table}.duckdb"
            with duckdb.connect(str(path)) as con:
                con.register("incoming", _arrow(rows))
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM incoming")
            port = OutputPortFactory(
                product=product,
                slug=table,
                source=DataSourceFactory(kind=SourceKind.DUCKDB, path=str(path)),
                schema_name="main",
                table_name=table,
            )
        else:
            relative = f"truth/{request.node.name}/{table}.parquet".replace("[", "-").replace(
                "]", ""
            )
            (media_root / relative).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(_arrow(rows), media_root / relative)
            port = FilePortFactory(product=product, slug=table, file_path=relative)
        refresh = schema_refresh_execute(run_id=schema_refresh_request(port=port, by=owner).pk)
        assert refresh.status == "succeeded", refresh.error
        assert list(port.columns.order_by("position").values_list("name", flat=True)) == NAMES
        return product, port

    return make


@pytest.fixture
def owner_api(api_client, owner):
    api_client.force_authenticate(owner)
    return api_client


def _define_suite(client, product) -> None:
    for name, spec, severity in CHECKS:
        response = client.post(
            f"/api/v1/products/{product.key}/checks/",
            {"name": name, "severity": severity, **spec},
            format="json",
        )
        assert response.status_code == 201, (name, response.json())
        assert response.json()["column"] == spec.get("column", ""), name


def _run(client, product) -> dict:
    """Request a run through the API, execute it as the worker does, read it back."""
    response = client.post(f"/api/v1/products/{product.key}/check-runs/", {}, format="json")
    assert response.status_code == 202, response.json()
    check_run(response.json()["id"])  # the Celery task's body: run, incidents, trust
    body = client.get(response.json()["url"]).json()
    assert body["status"] == "done", body
    return body


def _assert_truth(client, product, body: dict, truth: dict, *, rows: int) -> None:
    results = {result["check_name"]: result for result in body["results"]}
    assert set(results) == set(truth)
    assert body["row_count"] == rows
    for name, (outcome, observed, failing_rows) in truth.items():
        result = results[name]
        assert result["outcome"] == outcome, (name, result["message"])
        if name.startswith("fresh"):
            if observed is None:
                assert result["observed_value"] is None, name
            else:
                assert result["observed_value"] == pytest.approx(observed, abs=0.05), name
            continue
        assert result["observed_value"] == observed, (name, result["message"])
        if name != "rows":
            assert result["failing_rows"] == observed, name
            # The failing rows themselves, for a member of the domain.
            sample = {row["row_no"] for row in result["sample"]}
            assert sample == failing_rows, name

    # One incident per failing error-severity check, none for a warn or a pass.
    failing_errors = {name for name, (outcome, _, _) in truth.items() if outcome == "fail"} & {
        name for name, severity in SEVERITY.items() if severity == "error"
    }
    incidents = client.get(f"/api/v1/products/{product.key}/incidents/?status=open").json()
    titles = {incident["title"] for incident in incidents["results"]}
    assert titles == {f"Check '{name}' failing on {product.name}" for name in failing_errors}

    # The quality component is docs/trust-score.md's formula over these results.
    weights = {name: WEIGHTS[SEVERITY[name]] for name in truth}
    passed = sum(weights[name] for name, (outcome, _, _) in truth.items() if outcome == "pass")
    expected = round(100 * passed / sum(weights.values()), 1)
    trust = client.get(f"/api/v1/products/{product.key}/trust/").json()
    quality = next(c for c in trust["components"] if c["name"] == "quality")
    assert quality["score"] == expected
    assert quality["evidence"]["weight_passed"] == passed


# --- the truth tables ----------------------------------------------------------------------


def test_known_defects_are_counted_exactly(make_product, owner_api):
    product, _ = make_product("defects", _defect_rows(timezone.now()))
    _define_suite(owner_api, product)
    body = _run(owner_api, product)
    _assert_truth(owner_api, product, body, DEFECTS, rows=10)
    results = {result["check_name"]: result for result in body["results"]}
    # The awkward names come back verbatim, beside the row's values, in the samples.
    [seven_fifty, twelve] = sorted(results["amount accepted"]["sample"], key=lambda r: r["row_no"])
    assert (seven_fifty["amount "], twelve["amount "]) == ("7.50", "12.00")
    assert seven_fifty["amount"] == 99.5
    assert {row['a"b'] for row in results["quote pattern"]["sample"]} == {"ab", "A1"}
    assert [row["select"] for row in results["select accepted"]["sample"]] == ["z"]
    assert [row["Order ID"] for row in results["order id not null"]["sample"]] == [None]
    assert [row["ratio"] for row in results["ratio range"]["sample"]] == ["NaN"]
    assert results["amount accepted"]["column"] == "amount "


def test_the_clean_twin_passes_everything(make_product, owner_api):
    product, _ = make_product("clean", _clean_rows(timezone.now()))
    _define_suite(owner_api, product)
    body = _run(owner_api, product)
    _assert_truth(owner_api, product, body, CLEAN, rows=10)
    assert (body["passed"], body["failed"], body["errored"]) == (len(CHECKS), 0, 0)


def test_an_empty_table_gives_every_checks_value(make_product, owner_api):
    product, _ = make_product("empty", [])
    _define_suite(owner_api, product)
    body = _run(owner_api, product)
    _assert_truth(owner_api, product, body, EMPTY, rows=0)
    results = {result["check_name"]: result for result in body["results"]}
    assert results["fresh tz"]["message"] == "The column has no values: nothing to be fresh."
    assert results["amount accepted"]["message"] == "0 unexpected rows of 0 (0%)."


def test_freshness_is_the_same_in_a_session_far_from_utc(make_product, owner_api, monkeypatch):
    """The source's session is at UTC+14 (PostgreSQL's TimeZone, DuckDB's local zone): a
    timestamptz is an instant whatever the session says; a timestamp without time zone
    is read as UTC wall-clock time (docs/trust-score.md, "What checks compare")."""
    now = timezone.now()
    product, _ = make_product("zoned", _defect_rows(now))
    monkeypatch.setenv("PGTZ", "Pacific/Kiritimati")
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    try:
        for name, spec, severity in CHECKS:
            if name.startswith("fresh"):
                owner_api.post(
                    f"/api/v1/products/{product.key}/checks/",
                    {"name": name, "severity": severity, **spec},
                    format="json",
                )
        body = _run(owner_api, product)
    finally:
        monkeypatch.undo()
        time.tzset()
    results = {result["check_name"]: result for result in body["results"]}
    assert results["fresh tz"]["outcome"] == "fail"
    assert results["fresh tz"]["observed_value"] == pytest.approx(30, abs=0.05)
    assert results["fresh naive"]["outcome"] == "pass"
    assert results["fresh naive"]["observed_value"] == pytest.approx(10, abs=0.05)
    newest = (now - timedelta(hours=30)).astimezone(UTC)
    assert results["fresh tz"]["message"].startswith(f"Newest value {newest:%Y-%m-%d %H:%M} UTC")
    assert os.environ.get("PGTZ") is None


# --- what is refused when a check is saved -------------------------------------------------


@pytest.mark.parametrize(
    ("column", "values", "words"),
    [
        ("amount ", ["5", "five"], ["'five'", "numeric(12,2)", "DECIMAL(12,2)"]),
        ("amount ", ["5.001"], ["'5.001'", "numeric(12,2)", "DECIMAL(12,2)"]),
        ("amount ", ["NaN"], ["'NaN'", "numeric(12,2)", "DECIMAL(12,2)"]),
        ("score", [1, 2.5], ["2.5", "integer", "INTEGER"]),
        ("ratio", ["zero"], ["'zero'", "double precision", "DOUBLE"]),
        ("flag", ["maybe"], ["'maybe'", "boolean", "BOOLEAN"]),
        ("day", ["2024-13-01"], ["'2024-13-01'", "date", "DATE"]),
        ("created_at", [5], ["5", "timestamp with time zone", "TIMESTAMP WITH TIME ZONE"]),
    ],
)
def test_a_listed_value_the_columns_type_cannot_hold_is_refused(
    make_product, owner_api, column, values, words
):
    product, _ = make_product("typed", [])
    response = owner_api.post(
        f"/api/v1/products/{product.key}/checks/",
        {"kind": "accepted_values", "column": column, "params": {"values": values}},
        format="json",
    )
    assert response.status_code == 400
    message = str(response.json()["params"])
    value, *type_names = words
    assert value in message
    assert any(type_name in message for type_name in type_names), message


@pytest.mark.parametrize("column", ["amount  ", " amount", "AMOUNT ", "order id", "Select", "a'b"])
def test_a_column_is_named_exactly(make_product, owner_api, column):
    product, _ = make_product("names", [])
    response = owner_api.post(
        f"/api/v1/products/{product.key}/checks/",
        {"kind": "not_null", "column": column},
        format="json",
    )
    assert response.status_code == 400
    [message] = response.json()["column"]
    assert repr(column) in message


def test_a_check_on_amount_with_a_space_measures_that_column(make_product, owner_api):
    """`amount ` and `amount` are two columns: a check on each measures its own."""
    product, port = make_product("twins", _defect_rows(timezone.now()))
    for name, column in (("with space", "amount "), ("without", "amount")):
        response = owner_api.post(
            f"/api/v1/products/{product.key}/checks/",
            {
                "name": name,
                "kind": "accepted_values",
                "column": column,
                "params": {"values": [5, 10]},
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
    results = {r["check_name"]: r for r in _run(owner_api, product)["results"]}
    assert results["with space"]["failing_rows"] == 2
    assert results["without"]["failing_rows"] == 10
    assert set(port.checks.values_list("column", flat=True)) == {"amount ", "amount"}


# --- identifiers are verbatim everywhere else too ------------------------------------------


def test_a_metric_on_awkward_columns_reads_those_columns(make_product, owner_api):
    """A metric summing `amount ` by `select`, filtered on `a"b` and `Order ID` (and, when
    read, on `select`), defined and evaluated through the API."""
    product, _ = make_product("metric", _defect_rows(timezone.now()))
    response = owner_api.post(
        "/api/v1/metrics/",
        {
            "key": "sales.spaced-amount",
            "name": "Spaced amount",
            "product": product.key,
            "aggregation": "sum",
            "column": "amount ",
            "dimensions": ["select"],
            "filters": [
                {"column": 'a"b', "op": "!=", "value": "GH"},
                {"column": "Order ID", "op": "is not null"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["measure"]["column"] == "amount "
    response = owner_api.get(
        "/api/v1/metrics/sales.spaced-amount/values/",
        {"dimensions": "select", "filters": '[{"column": "select", "op": "!=", "value": "z"}]'},
    )
    assert response.status_code == 200, response.json()
    values = {row["select"]: row["value"] for row in response.json()["rows"]}
    # Rows 5 (Order ID null), 6 (a"b GH), 7 (a"b NULL: != compares with nothing) and 4
    # (select z) left out.
    assert {key: float(value) for key, value in values.items()} == {"x": 25.0, "y": 22.0}


def test_grants_and_contracts_keep_names_verbatim(make_product, owner):
    product, port = make_product("names", [])
    assert clean_columns(product=product, columns=["amount ", "Order ID", 'a"b', "select"]) == [
        "amount ",
        "Order ID",
        'a"b',
        "select",
    ]
    with pytest.raises(ValidationError, match="amount  "):
        clean_columns(product=product, columns=["amount  "])
    added, removed, _ = columns_declare(
        port=port, by=owner, columns=[{"name": "amount "}, {"name": " lead"}, {"name": "amount"}]
    )
    assert added == [" lead"]
    assert set(port.columns.values_list("name", flat=True)) == {"amount ", " lead", "amount"}


def test_a_typed_column_list_reads_the_columns_as_written(owner, domain, media_root, api_client):
    """`?columns=` takes each name as written: `amount ` (its trailing space included) is
    that column, not `amount`; a list typed with spaces after its commas still reads."""
    parquet_product(
        media_root=media_root,
        domain=domain,
        rows={"id": [1, 2], "amount": [10, 20], "amount ": [7, 8]},
        file_path="uploads/sales/awkward.parquet",
        sensitive=(),
    )
    api_client.force_authenticate(owner)

    def read(columns: str) -> list[dict]:
        response = api_client.get(
            "/api/v1/products/sales.orders/data/", {"columns": columns, "format": "json"}
        )
        assert response.status_code == 200, response.content
        return json.loads(b"".join(response.streaming_content))

    assert read("id,amount ") == [{"id": 1, "amount ": 7}, {"id": 2, "amount ": 8}]
    assert read("id, amount") == [{"id": 1, "amount": 10}, {"id": 2, "amount": 20}]
