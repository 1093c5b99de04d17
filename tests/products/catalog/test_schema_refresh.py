"""Schema refresh reads columns from the source, keeps people's descriptions, and runs on a
real Celery worker; unreachable sources end the run failed with a readable reason."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from products.catalog.services.schema_refresh import (
    schema_refresh_execute,
    schema_refresh_reap,
    schema_refresh_request,
)
from products.choices import Classification, RunStatus, SourceKind
from products.models import SchemaRefreshRun
from tests.conftest import wait_for
from tests.factories import (
    ColumnFactory,
    DataSourceFactory,
    FilePortFactory,
    OutputPortFactory,
    ProductFactory,
)


@pytest.fixture
def parquet_port(domain, media_root):
    path = media_root / "files" / "orders.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "order_id": pa.array([1, 2, 3], pa.int64()),
            "amount": pa.array([9.5, 3.25, 1.0], pa.float64()),
            "country": pa.array(["BE", "NL", None], pa.string()),
        }
    )
    pq.write_table(table, path)
    product = ProductFactory(domain=domain)
    return FilePortFactory(
        product=product,
        file_path="files/orders.parquet",
    )


@pytest.fixture
def pg_table(postgres):
    """A real table in a `warehouse_test` schema of the test database."""
    with postgres.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS warehouse_test")
        cur.execute("DROP TABLE IF EXISTS warehouse_test.customers")
        cur.execute(
            "CREATE TABLE warehouse_test.customers ("
            " customer_id bigint NOT NULL PRIMARY KEY,"
            " email varchar(200),"
            " signed_up_at timestamptz NOT NULL)"
        )
    yield "warehouse_test", "customers"
    with postgres.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS warehouse_test CASCADE")


def _pg_source(postgres):
    cfg = postgres.settings_dict
    return DataSourceFactory(
        kind=SourceKind.POSTGRESQL,
        path="",
        host=cfg.get("HOST") or "localhost",
        port=int(cfg.get("PORT") or 5432),
        database=cfg["NAME"],
        username=cfg.get("USER") or "",
    )


def test_refresh_reads_parquet_columns_and_keeps_descriptions(parquet_port, owner):
    ColumnFactory(
        port=parquet_port,
        name="amount",
        data_type="VARCHAR",
        description="Order total in euros",
        classification=Classification.CONFIDENTIAL,
    )
    ColumnFactory(port=parquet_port, name="gone", description="no longer in the file")

    run = schema_refresh_request(port=parquet_port, by=owner)
    run = schema_refresh_execute(run_id=run.pk)

    assert run.status == RunStatus.SUCCEEDED, run.error
    columns = {c.name: c for c in parquet_port.columns.all()}
    assert list(columns) == ["order_id", "amount", "country"]
    assert columns["order_id"].data_type == "BIGINT"
    assert columns["amount"].data_type == "DOUBLE"
    assert columns["amount"].description == "Order total in euros"
    assert columns["amount"].classification == Classification.CONFIDENTIAL
    assert run.columns_added == ["order_id", "country"]
    assert run.columns_removed == ["gone"]
    assert run.columns_changed == ["amount"]


def test_a_run_is_claimed_once(parquet_port, owner):
    run = schema_refresh_request(port=parquet_port, by=owner)
    assert schema_refresh_execute(run_id=run.pk) is not None
    assert schema_refresh_execute(run_id=run.pk) is None  # duplicate delivery: no-op


def test_unreachable_source_fails_with_a_readable_reason(owner, domain):
    source = DataSourceFactory(
        kind=SourceKind.POSTGRESQL, path="", host="127.0.0.1", port=1, database="nowhere"
    )
    port = OutputPortFactory(product=ProductFactory(domain=domain), source=source)
    run = schema_refresh_execute(run_id=schema_refresh_request(port=port, by=owner).pk)
    assert run.status == RunStatus.FAILED
    assert "Cannot connect to data source" in run.error
    assert run.finished_at is not None


def test_missing_password_variable_is_named_not_leaked(owner, domain, monkeypatch):
    monkeypatch.delenv("WAREHOUSE_PASSWORD_FOR_TEST", raising=False)
    source = DataSourceFactory(
        kind=SourceKind.POSTGRESQL,
        path="",
        host="127.0.0.1",
        database="x",
        password_env="WAREHOUSE_PASSWORD_FOR_TEST",
    )
    port = OutputPortFactory(product=ProductFactory(domain=domain), source=source)
    run = schema_refresh_execute(run_id=schema_refresh_request(port=port, by=owner).pk)
    assert run.status == RunStatus.FAILED
    assert "WAREHOUSE_PASSWORD_FOR_TEST" in run.error


def test_reaper_fails_runs_whose_worker_died(parquet_port, owner, settings):
    run = SchemaRefreshRun.objects.create(
        port=parquet_port,
        status=RunStatus.RUNNING,
        started_at=timezone.now() - settings.SCHEMA_REFRESH_TIMEOUT * 2,
    )
    assert schema_refresh_reap() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "worker stopped" in run.error


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_refreshes_a_postgres_table(celery_worker, pg_table, postgres, domain, owner):
    schema, table = pg_table
    port = OutputPortFactory(
        product=ProductFactory(domain=domain),
        source=_pg_source(postgres),
        schema_name=schema,
        table_name=table,
    )
    ColumnFactory(port=port, name="email", data_type="text", description="Where we write to")

    run = schema_refresh_request(port=port, by=owner)

    def finished():
        run.refresh_from_db()
        return run.is_finished

    wait_for(finished, timeout=60, message="the worker did not finish the refresh")
    assert run.status == RunStatus.SUCCEEDED, run.error
    columns = list(
        port.columns.order_by("position").values_list(
            "name", "data_type", "nullable", "description"
        )
    )
    assert columns == [
        ("customer_id", "bigint", False, ""),
        ("email", "character varying(200)", True, "Where we write to"),
        ("signed_up_at", "timestamp with time zone", False, ""),
    ]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_refreshes_a_parquet_file(celery_worker, parquet_port, owner):
    run = schema_refresh_request(port=parquet_port, by=owner)

    def finished():
        run.refresh_from_db()
        return run.is_finished

    wait_for(finished, timeout=60, message="the worker did not finish the refresh")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert list(parquet_port.columns.values_list("name", flat=True)) == [
        "order_id",
        "amount",
        "country",
    ]
