"""Check samples on Parquet ports: read by position (the failing rows' file row numbers
first, then those rows), they are the same rows in the same order as the plain
`SELECT * ... WHERE <failing> LIMIT 20`, and the row number never shows: not in samples,
not in the port's columns, not in what the port serves."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from products.choices import CheckKind, CheckOutcome, CheckRunStatus
from products.connectors import connector_for_port
from products.trust.services.check_sql import SAMPLE_ROWS, CheckSQL, SampleRequest
from products.trust.services.checks import check_create, check_run_execute, check_run_request
from tests.factories import FilePortFactory, ProductFactory

ROWS = 6000
STATUSES = ("paid", "shipped", "cancelled")


def _row(i: int) -> dict:
    """Row i of the file. Defects are spread over the file's 6 row groups; ids are not in
    file order, so an order by id would differ from the file's."""
    return {
        "order_id": (i * 7919) % ROWS,
        "email": None if i % 97 == 5 else f"u{i}@x.com",
        "status": "lost" if i % 211 == 7 else STATUSES[i % 3],
        "amount": -1.5 if i % 173 == 3 else (5000.0 if i % 251 == 9 else float(i % 900)),
        "sku": "bad" if i % 139 == 11 else f"SKU-{i % 1000:03d}",
    }


FAILING = {
    "not_null": lambda r: r["email"] is None,
    "accepted": lambda r: r["status"] not in STATUSES,
    "range": lambda r: not 0 <= r["amount"] <= 1000,
    "pattern": lambda r: r["sku"] == "bad",
}
CHECKS = {
    "not_null": dict(kind=CheckKind.NOT_NULL, column="email"),
    "accepted": dict(
        kind=CheckKind.ACCEPTED_VALUES, column="status", params={"values": list(STATUSES)}
    ),
    "range": dict(kind=CheckKind.RANGE, column="amount", params={"min": 0, "max": 1000}),
    "pattern": dict(kind=CheckKind.PATTERN, column="sku", params={"regex": "^SKU-[0-9]{3}$"}),
}


def _write(media_root, name: str, rows: list[dict], **extra_columns) -> str:
    path = media_root / "samples" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    table = pa.table({**extra_columns, **columns})
    pq.write_table(table, path, row_group_size=1000)
    return f"samples/{name}"


def _port(media_root, domain, name: str, rows: list[dict], **extra_columns):
    return FilePortFactory(
        product=ProductFactory(domain=domain),
        file_path=_write(media_root, name, rows, **extra_columns),
        freshness_column="",
    )


def _run(port, owner) -> dict:
    for name, spec in CHECKS.items():
        check_create(port=port, by=owner, name=name, **spec)
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    assert run.status == CheckRunStatus.DONE, run.error
    return {r.quality_check.name: r for r in run.results.select_related("quality_check")}


def test_samples_are_the_first_failing_rows_in_file_order(media_root, domain, owner):
    rows = [_row(i) for i in range(ROWS)]
    port = _port(media_root, domain, "orders.parquet", rows)
    results = _run(port, owner)
    for name, failing in FAILING.items():
        expected = [row for row in rows if failing(row)]
        assert len(expected) > SAMPLE_ROWS  # more failures than a sample holds
        result = results[name]
        assert result.outcome == CheckOutcome.FAIL
        assert result.failing_rows == len(expected), name
        assert result.sample == expected[:SAMPLE_ROWS], name  # same rows, same order, no extra key


def test_the_sample_statement_reads_by_position_and_matches_the_plain_one(
    media_root, domain, owner
):
    rows = [_row(i) for i in range(ROWS)]
    port = _port(media_root, domain, "orders.parquet", rows)
    with connector_for_port(port) as connector:
        sql = CheckSQL(connector)
        for name, spec in CHECKS.items():
            check = check_create(port=port, by=owner, name=name, **spec)
            statement, params = sql.sample_sql(check)
            assert "port_data_numbered" in statement  # the two-step read is the one used
            condition, condition_params = sql.failing_condition(check)
            plain = connector.fetch_with_names(
                f"SELECT * FROM port_data WHERE {condition} LIMIT {SAMPLE_ROWS}", condition_params
            )
            assert connector.fetch_with_names(statement, params) == plain, name
        # The row number is no column of the port, nor of what it serves.
        names = [column.name for column in connector.describe()]
        assert names == ["order_id", "email", "status", "amount", "sku"]
        served, _ = connector.fetch_with_names(f"SELECT * FROM {connector.relation_sql()}")
        assert served == names


def test_a_file_with_its_own_file_row_number_column_still_gets_samples(media_root, domain, owner):
    rows = [_row(i) for i in range(ROWS)]
    own = list(range(ROWS, 0, -1))
    port = _port(media_root, domain, "own_number.parquet", rows, file_row_number=own)
    with connector_for_port(port) as connector:
        assert connector.numbered_relation() is None  # its column wins: plain samples
    results = _run(port, owner)
    expected = [
        {"file_row_number": own[i], **row} for i, row in enumerate(rows) if FAILING["range"](row)
    ]
    assert results["range"].sample == expected[:SAMPLE_ROWS]


def test_csv_ports_sample_as_before(media_root, domain, owner):
    rows = [_row(i) for i in range(300)]
    path = media_root / "samples" / "orders.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["order_id,email,status,amount,sku"] + [
        ",".join("" if v is None else str(v) for v in row.values()) for row in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    port = FilePortFactory(
        product=ProductFactory(domain=domain),
        file_path="samples/orders.csv",
        file_format="csv",
        freshness_column="",
    )
    with connector_for_port(port) as connector:
        assert connector.numbered_relation() is None
    results = _run(port, owner)
    expected = [row for row in rows if FAILING["range"](row)]
    assert results["range"].sample == expected[:SAMPLE_ROWS]


def test_the_aggregate_finds_each_checks_first_failing_positions(media_root, domain, owner):
    """One scan gives every row-level check its count and the file positions of its first
    failing rows (what its sample then reads), in the file's order."""
    rows = [_row(i) for i in range(ROWS)]
    port = _port(media_root, domain, "orders.parquet", rows)
    checks = [check_create(port=port, by=owner, name=name, **spec) for name, spec in CHECKS.items()]
    with connector_for_port(port) as connector:
        plan = CheckSQL(connector).aggregate_plan(checks, sample_positions=True)
        row = connector.fetch(plan.sql, plan.params)[0]
    for check in checks:
        failing = [i for i, values in enumerate(rows) if FAILING[check.name](values)]
        assert row[plan.slots[check.pk]] == len(failing), check.name
        assert row[plan.positions[check.pk]] == failing[:SAMPLE_ROWS], check.name


def test_a_position_whose_row_no_longer_fails_is_not_taken_as_a_sample(media_root, domain, owner):
    """Positions come from the aggregate, rows from the next statement: when the file
    changed in between, a position may hold a row that passes. That check is left out of
    the shared read (the run then reads its sample on its own); the others keep theirs."""
    rows = [_row(i) for i in range(ROWS)]
    port = _port(media_root, domain, "orders.parquet", rows)
    amount = check_create(port=port, by=owner, name="range", **CHECKS["range"])
    sku = check_create(port=port, by=owner, name="pattern", **CHECKS["pattern"])
    failing = [i for i, values in enumerate(rows) if FAILING["range"](values)][:SAMPLE_ROWS]
    assert not FAILING["pattern"](rows[0]) and not FAILING["pattern"](rows[1])
    with connector_for_port(port) as connector:
        sql = CheckSQL(connector)
        plan = sql.samples_plan(
            [
                SampleRequest(check=amount, positions=failing),
                SampleRequest(check=sku, positions=[0, 1]),  # stale: these rows pass
            ]
        )
        samples = plan.split(*connector.fetch_with_names(plan.sql, plan.params))
    assert sku.pk not in samples
    assert samples[amount.pk] == [rows[i] for i in failing]


def test_a_check_the_source_refuses_leaves_the_others_their_samples(media_root, domain, owner):
    """A regular expression DuckDB cannot compile sinks the one aggregate; each check is
    then evaluated alone, positions included, and the others' samples are still the
    first failing rows in file order."""
    rows = [_row(i) for i in range(ROWS)]
    port = _port(media_root, domain, "orders.parquet", rows)
    check_create(port=port, by=owner, name="range", **CHECKS["range"])
    check_create(
        port=port,
        by=owner,
        name="broken",
        kind=CheckKind.PATTERN,
        column="sku",
        params={"regex": "("},
    )
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    results = {r.quality_check.name: r for r in run.results.select_related("quality_check")}
    assert results["broken"].outcome == CheckOutcome.ERROR
    # describe, the aggregate (refused), the row count alone, each check alone, the samples
    assert run.statements == 6
    expected = [row for row in rows if FAILING["range"](row)]
    assert results["range"].failing_rows == len(expected)
    assert results["range"].sample == expected[:SAMPLE_ROWS]
