"""DuckDB checks: a custom SQL check written as a plain filtered count is counted in the
one aggregate scan (no statement of its own), with the same result as when it runs alone;
any other custom query runs alone as before. The unique check's sample keys are the 20
smallest duplicated keys however many keys repeat."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from products.choices import CheckKind, CheckOutcome, CheckRunStatus
from products.trust.services.check_sql import SAMPLE_ROWS
from products.trust.services.checks import check_create, check_run_execute, check_run_request
from tests.factories import FilePortFactory, ProductFactory

ROWS = 3000


def _row(i: int) -> dict:
    return {
        "order_id": i,
        "status": ("paid", "shipped", "returned")[i % 3],
        "amount": float((i * 37) % 1000),
    }


def _port(media_root, domain, rows: list[dict], name: str = "orders.parquet"):
    path = media_root / "counts" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({key: [row[key] for row in rows] for key in rows[0]}), path, row_group_size=500
    )
    return FilePortFactory(
        product=ProductFactory(domain=domain), file_path=f"counts/{name}", freshness_column=""
    )


def _custom(port, owner, name: str, sql: str):
    return check_create(
        port=port, by=owner, name=name, kind=CheckKind.CUSTOM_SQL, params={"sql": sql}
    )


def _run(port, owner):
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    assert run.status == CheckRunStatus.DONE, run.error
    return run, {r.quality_check.name: r for r in run.results.select_related("quality_check")}


def _returns_over(rows, amount):
    return sum(1 for r in rows if r["status"] == "returned" and r["amount"] > amount)


def test_a_filtered_count_is_counted_in_the_aggregate(media_root, domain, owner):
    rows = [_row(i) for i in range(ROWS)]
    port = _port(media_root, domain, rows)
    _custom(
        port,
        owner,
        "big returns",
        "SELECT count(*) FROM {table} WHERE status = 'returned' AND amount > 450",
    )
    _custom(port, owner, "all rows", "SELECT COUNT(*) AS n FROM {table}")
    run, results = _run(port, owner)
    assert results["big returns"].failing_rows == _returns_over(rows, 450) > 0
    assert results["big returns"].outcome == CheckOutcome.FAIL
    assert results["all rows"].failing_rows == ROWS
    assert run.statements == 2  # describe, the aggregate: no statement per custom check


@pytest.mark.parametrize(
    "sql",
    [
        # an alias (its columns are named through it)
        "SELECT count(*) FROM {table} t WHERE t.status = 'returned' AND t.amount > 450",
        # another aggregate than count(*)
        "SELECT sum(CASE WHEN status = 'returned' AND amount > 450 THEN 1 ELSE 0 END) FROM {table}",
        # a subquery in the condition
        "SELECT count(*) FROM {table} WHERE status = 'returned' AND amount > "
        "(SELECT 450 FROM {table} LIMIT 1)",
    ],
)
def test_any_other_custom_query_runs_alone_with_the_same_result(media_root, domain, owner, sql):
    rows = [_row(i) for i in range(ROWS)]
    port = _port(media_root, domain, rows)
    _custom(port, owner, "custom", sql)
    run, results = _run(port, owner)
    assert results["custom"].failing_rows == _returns_over(rows, 450)
    assert run.statements == 3  # describe, the aggregate, the custom query


def test_the_files_row_number_is_not_a_column_of_a_counted_condition(media_root, domain, owner):
    """The aggregate reads the view with the file's row numbers; a custom condition naming
    that column is not counted there, so it fails as it does alone (no such column)."""
    port = _port(media_root, domain, [_row(i) for i in range(ROWS)])
    _custom(port, owner, "numbered", "SELECT count(*) FROM {table} WHERE file_row_number < 10")
    _, results = _run(port, owner)
    assert results["numbered"].outcome == CheckOutcome.ERROR
    assert results["numbered"].failing_rows is None


def test_a_counted_check_keeps_its_result_when_the_aggregate_is_refused(media_root, domain, owner):
    """A regular expression DuckDB cannot compile sinks the one aggregate: the custom
    check then runs as its own statement and still counts its rows."""
    rows = [_row(i) for i in range(ROWS)]
    port = _port(media_root, domain, rows)
    _custom(
        port,
        owner,
        "big returns",
        "SELECT count(*) FROM {table} WHERE status = 'returned' AND amount > 450",
    )
    check_create(
        port=port,
        by=owner,
        name="broken",
        kind=CheckKind.PATTERN,
        column="status",
        params={"regex": "("},
    )
    _, results = _run(port, owner)
    assert results["broken"].outcome == CheckOutcome.ERROR
    assert results["big returns"].failing_rows == _returns_over(rows, 450)


def test_a_failing_counted_condition_errors_that_check_only(media_root, domain, owner):
    rows = [_row(i) for i in range(ROWS)]
    port = _port(media_root, domain, rows)
    _custom(
        port, owner, "bad cast", "SELECT count(*) FROM {table} WHERE CAST(status AS INTEGER) > 1"
    )
    _custom(
        port,
        owner,
        "big returns",
        "SELECT count(*) FROM {table} WHERE status = 'returned' AND amount > 450",
    )
    _, results = _run(port, owner)
    assert results["bad cast"].outcome == CheckOutcome.ERROR
    assert "paid" not in results["bad cast"].message  # never the value it could not convert
    assert results["big returns"].failing_rows == _returns_over(rows, 450)


def test_the_unique_sample_holds_the_smallest_duplicated_keys(media_root, domain, owner):
    """Many more duplicated keys than a sample holds, in no order in the file: the count
    is exact and the sample's rows are those of the smallest keys, by key."""
    keys = [(i * 7919) % ROWS for i in range(ROWS)] + [(i * 31) % 400 for i in range(400)]
    rows = [{**_row(i), "order_id": key} for i, key in enumerate(keys)]
    port = _port(media_root, domain, rows)
    check_create(port=port, by=owner, name="unique", kind=CheckKind.UNIQUE, column="order_id")
    run, results = _run(port, owner)
    result = results["unique"]
    assert result.failing_rows == 400
    expected = sorted(key for key in keys if key < 400)[:SAMPLE_ROWS]
    assert [row["order_id"] for row in result.sample] == expected
    assert run.statements == 4  # describe, the aggregate, the grouping, the samples
