"""A metric's values equal hand-written SQL on the same engine, on PostgreSQL and on a
Parquet file read through DuckDB, for every measure (sum, count, count distinct,
average, min, max, ratio), with fixed filters, dimensions, day/week/month grains, a date
range and filters; and one SQL statement pushed down per evaluation."""

from collections import defaultdict
from datetime import date

import pytest

from products.definitions.services.metrics import metric_create, metric_evaluate
from sharing.choices import Channel
from sharing.models import AccessEvent
from tests.products.definitions.metric_data import ROWS, hand_sql, orders_product

ENGINES = ["postgresql", "parquet"]
NOT_CANCELLED = [{"column": "status", "op": "!=", "value": "cancelled"}]

# name: (definition, query, hand-written SQL)
CASES = {
    "sum per month and channel, fixed filter": (
        dict(
            aggregation="sum",
            column="amount",
            filters=NOT_CANCELLED,
            dimensions=["channel", "country"],
            time_column="ordered_at",
        ),
        dict(grain="month", dimensions=["channel"]),
        "SELECT CAST(date_trunc('month', ordered_at AT TIME ZONE 'UTC') AS DATE), channel, "
        "sum(amount) FROM {t} WHERE status <> 'cancelled' GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    "count of rows, whole table": (
        dict(aggregation="count"),
        dict(),
        "SELECT count(*) FROM {t}",
    ),
    "count of a column per country": (
        dict(aggregation="count", column="discount", dimensions=["country"]),
        dict(dimensions=["country"]),
        "SELECT country, count(discount) FROM {t} GROUP BY 1 ORDER BY 1",
    ),
    "count distinct per week": (
        dict(aggregation="count_distinct", column="customer_id", time_column="ordered_at"),
        dict(grain="week"),
        "SELECT CAST(date_trunc('week', ordered_at AT TIME ZONE 'UTC') AS DATE), "
        "count(DISTINCT customer_id) FROM {t} GROUP BY 1 ORDER BY 1",
    ),
    "average per country and channel": (
        dict(aggregation="avg", column="amount", dimensions=["country", "channel"]),
        dict(dimensions=["country", "channel"]),
        "SELECT country, channel, avg(amount) FROM {t} GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    "min per day of a date column, in a date range": (
        dict(aggregation="min", column="amount", time_column="order_day"),
        dict(grain="day", start=date(2025, 2, 1), end=date(2025, 2, 10)),
        "SELECT CAST(date_trunc('day', CAST(order_day AS TIMESTAMP)) AS DATE), min(amount) "
        "FROM {t} WHERE order_day >= DATE '2025-02-01' AND order_day < DATE '2025-02-11' "
        "GROUP BY 1 ORDER BY 1",
    ),
    "max per channel with a filter": (
        dict(aggregation="max", column="quantity", dimensions=["channel", "country"]),
        dict(dimensions=["channel"], filters=[{"column": "country", "op": "in", "value": ["BE"]}]),
        "SELECT channel, max(quantity) FROM {t} WHERE country IN ('BE') GROUP BY 1 ORDER BY 1",
    ),
    "ratio of sums per month": (
        dict(
            aggregation="sum",
            column="amount",
            denominator_aggregation="sum",
            denominator_column="quantity",
            filters=NOT_CANCELLED,
            time_column="ordered_at",
        ),
        dict(grain="month"),
        "SELECT CAST(date_trunc('month', ordered_at AT TIME ZONE 'UTC') AS DATE), "
        "CAST(sum(amount) AS {double}) / NULLIF(CAST(sum(quantity) AS {double}), 0) "
        "FROM {t} WHERE status <> 'cancelled' GROUP BY 1 ORDER BY 1",
    ),
    "ratio of counts is not an integer division, in a range, filtered": (
        dict(
            aggregation="count",
            denominator_aggregation="count_distinct",
            denominator_column="customer_id",
            dimensions=["country"],
            time_column="ordered_at",
        ),
        dict(
            grain="month",
            start="2025-01-15",
            end="2025-02-28",
            filters=[{"column": "country", "op": "in", "value": ["BE", "NL"]}],
        ),
        "SELECT CAST(date_trunc('month', ordered_at AT TIME ZONE 'UTC') AS DATE), "
        "CAST(count(*) AS {double}) / NULLIF(CAST(count(DISTINCT customer_id) AS {double}), 0) "
        "FROM {t} WHERE country IN ('BE', 'NL') "
        "AND ordered_at >= TIMESTAMPTZ '2025-01-15 00:00:00+00' "
        "AND ordered_at < TIMESTAMPTZ '2025-03-01 00:00:00+00' GROUP BY 1 ORDER BY 1",
    ),
    "ratio with a zero denominator is null, not an error": (
        dict(
            aggregation="count",
            denominator_aggregation="count",
            denominator_column="discount",
            dimensions=["channel"],
        ),
        dict(dimensions=["channel"]),
        "SELECT channel, CAST(count(*) AS {double}) / NULLIF(CAST(count(discount) AS {double}), 0) "
        "FROM {t} GROUP BY 1 ORDER BY 1",
    ),
}


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


@pytest.fixture
def orders(engine, request, domain, media_root):
    connection = request.getfixturevalue("postgres") if engine == "postgresql" else None
    product = orders_product(
        engine=engine, domain=domain, connection=connection, media_root=media_root
    )
    product.hand = lambda sql: hand_sql(engine, sql, connection=connection, media_root=media_root)
    return product


def _metric(product, owner, key="sales.m", **definition):
    port = product.ports.get()
    return metric_create(by=owner, port=port, key=key, name="Metric", **definition)


@pytest.mark.parametrize("case", list(CASES))
def test_values_equal_hand_written_sql(orders, owner, case):
    definition, query, sql = CASES[case]
    metric = _metric(orders, owner, **definition)
    result = metric_evaluate(metric=metric, user=owner, channel=Channel.API, **query)
    got = [tuple(row[column] for column in result.columns) for row in result.rows]
    expected = orders.hand(sql)
    assert expected, "the hand-written query must return rows to compare"
    assert got == expected
    assert not result.truncated


def test_a_zero_denominator_gives_null(orders, owner):
    definition, query, _ = CASES["ratio with a zero denominator is null, not an error"]
    metric = _metric(orders, owner, **definition)
    result = metric_evaluate(metric=metric, user=owner, channel=Channel.API, **query)
    by_channel = {row["channel"]: row["value"] for row in result.rows}
    assert by_channel["phone"] is None  # no discount by phone: count(discount) is 0
    assert by_channel["web"] == 1.0


def test_a_ratio_of_counts_keeps_its_fraction(orders, owner):
    definition, query, _ = CASES["ratio of counts is not an integer division, in a range, filtered"]
    metric = _metric(orders, owner, **definition)
    result = metric_evaluate(metric=metric, user=owner, channel=Channel.API, **query)
    values = [row["value"] for row in result.rows]
    assert values and any(value != int(value) for value in values)


def test_month_totals_match_the_rows_cut_in_utc(orders, owner):
    """Independent of SQL: sum the generated rows per UTC month in Python."""
    metric = _metric(orders, owner, **CASES["sum per month and channel, fixed filter"][0])
    result = metric_evaluate(metric=metric, user=owner, channel=Channel.API, grain="month")
    expected = defaultdict(float)
    for row in ROWS:
        if row[7] != "cancelled":
            expected[row[1].date().replace(day=1)] += row[8]
    got = {row["period"]: float(row["value"]) for row in result.rows}
    assert got == dict(expected)
    # The order at 23:30 UTC on 31 January counts in January, the one at 00:30 in February.
    assert date(2025, 1, 1) in got and date(2025, 2, 1) in got


def test_one_statement_is_pushed_down_and_audited(orders, owner):
    metric = _metric(orders, owner, **CASES["sum per month and channel, fixed filter"][0])
    result = metric_evaluate(
        metric=metric, user=owner, channel=Channel.NOTEBOOK, grain="week", dimensions=["country"]
    )
    assert result.sql.count("SELECT") == 1 and "GROUP BY 1, 2" in result.sql
    assert len(result.rows) < len(ROWS)  # aggregated on the source, not fetched
    event = AccessEvent.objects.get()
    assert event.channel == "notebook" and event.rows == len(result.rows)
    assert event.detail["metric"] == "sales.m" and event.detail["grain"] == "week"
    assert event.columns == ["amount", "status", "country", "ordered_at"]
