"""Ports, columns, schema refresh runs and data sources through the API: visibility,
who may write, bad input, and that no connection secret ever appears in a response."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from products.catalog.services.schema_refresh import schema_refresh_execute
from products.choices import Classification, LifecycleStatus, SourceKind
from products.models import DataSource, OutputPort, SchemaRefreshRun
from tests.conftest import wait_for
from tests.factories import (
    ColumnFactory,
    DataSourceFactory,
    FilePortFactory,
    OutputPortFactory,
    ProductFactory,
)

SECRET_ENV = "WAREHOUSE_PASSWORD_VAR_FOR_API_TEST"


@pytest.fixture
def warehouse(db):
    return DataSourceFactory(
        name="warehouse",
        kind=SourceKind.POSTGRESQL,
        path="",
        host="db.internal.example",
        port=5432,
        database="dwh",
        username="svc_portal",
        password_env=SECRET_ENV,
        description="The data warehouse",
    )


@pytest.fixture
def draft(domain):
    return ProductFactory(domain=domain, name="Returns", slug="returns", status="draft")


@pytest.fixture
def port(product, warehouse):
    port = OutputPortFactory(
        product=product,
        name="Orders table",
        slug="orders-table",
        source=warehouse,
        schema_name="sales",
        table_name="orders",
    )
    ColumnFactory(port=port, name="order_id", position=0, data_type="bigint")
    ColumnFactory(port=port, name="amount", position=1, data_type="numeric")
    return port


@pytest.fixture
def draft_port(draft, warehouse):
    return OutputPortFactory(product=draft, slug="returns-table", source=warehouse)


@pytest.fixture
def parquet_port(product, media_root):
    path = media_root / "files" / "api-orders.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "order_id": pa.array([1, 2, 3], pa.int64()),
            "amount": pa.array([9.5, 3.25, 1.0], pa.float64()),
        }
    )
    pq.write_table(table, path)
    return FilePortFactory(
        product=product,
        name="Orders file",
        slug="orders-file",
        file_path="files/api-orders.parquet",
    )


PORTS = "/api/v1/products/sales.orders/ports/"
PORT = "/api/v1/products/sales.orders/ports/orders-table/"
COLUMNS = PORT + "columns/"
DRAFT_PORTS = "/api/v1/products/sales.returns/ports/"
DRAFT_PORT = DRAFT_PORTS + "returns-table/"


def assert_no_secrets(response):
    text = response.content.decode()
    for secret in (SECRET_ENV, "db.internal.example", "svc_portal", "password"):
        assert secret not in text, f"{secret!r} leaked in {text}"


# --- ports -------------------------------------------------------------------------------


def test_ports_anonymous_is_401(client_as, port):
    client = client_as(None)
    assert client.get(PORTS).status_code == 401
    assert client.get(PORT).status_code == 401
    assert client.post(PORTS, {"name": "x"}).status_code == 401
    assert client.patch(PORT, {"description": "x"}).status_code == 401


def test_anyone_signed_in_reads_ports_of_a_published_product(client_as, port, outsider):
    response = client_as(outsider).get(PORTS)
    assert response.status_code == 200
    [item] = response.json()["results"]
    assert item["slug"] == "orders-table"
    assert item["source"] == "warehouse"
    assert item["location"] == "warehouse: sales.orders"
    assert [c["name"] for c in item["columns"]] == ["order_id", "amount"]
    assert item["url"].endswith(PORT)
    assert item["columns_url"].endswith(COLUMNS)
    assert item["last_refresh"] is None
    assert_no_secrets(response)

    response = client_as(outsider).get(PORT)
    assert response.status_code == 200
    assert response.json()["kind"] == "table"
    assert_no_secrets(response)


def test_ports_of_a_draft_are_404_to_outsiders(client_as, draft_port, outsider, member):
    assert client_as(outsider).get(DRAFT_PORTS).status_code == 404
    assert client_as(outsider).get(DRAFT_PORT).status_code == 404
    assert client_as(member).get(DRAFT_PORT).status_code == 200


def test_unknown_port_or_product_is_404(client_as, port, outsider):
    client = client_as(outsider)
    assert client.get(PORTS + "nothing/").status_code == 404
    assert client.get("/api/v1/products/sales.none/ports/").status_code == 404


def test_port_list_queries_do_not_grow_with_ports(
    client_as, product, warehouse, outsider, django_assert_max_num_queries
):
    client = client_as(outsider)

    def add_ports(count):
        for _ in range(count):
            p = OutputPortFactory(product=product, source=warehouse)
            ColumnFactory(port=p)
            ColumnFactory(port=p)

    add_ports(2)
    with CaptureQueriesContext(connection) as at_2:
        client.get(PORTS)
    add_ports(10)
    # product (with tags, owners), latest runs, count, ports with sources, columns
    with django_assert_max_num_queries(7) as at_12:
        response = client.get(PORTS)
    assert response.json()["count"] == 12
    assert len(at_12.captured_queries) == len(at_2.captured_queries)


def test_owner_creates_a_table_port(client_as, product, warehouse, owner):
    response = client_as(owner).post(
        PORTS,
        {"name": "Order lines", "source": "warehouse", "schema_name": "s", "table_name": "lines"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "order-lines"
    assert body["source"] == "warehouse"
    assert response["Location"] == body["url"]
    assert_no_secrets(response)


def test_owner_creates_a_file_port(client_as, product, owner):
    response = client_as(owner).post(
        PORTS,
        {
            "name": "Export",
            "kind": "file",
            "file_path": "uploads/sales/x.csv",
            "file_format": "csv",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["location"] == "csv: uploads/sales/x.csv"
    assert response.json()["source"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "X", "source": "nowhere", "table_name": "t"}, "source"),
        ({"name": "X", "source": "warehouse"}, "table_name"),
        ({"name": "X", "table_name": "t"}, "source"),
        (
            {"name": "X", "kind": "file", "file_path": "../../etc/passwd", "file_format": "csv"},
            "file_path",
        ),  # noqa: E501
        ({"name": "X", "kind": "file", "file_path": "a.csv"}, "file_format"),
        ({"name": "X", "kind": "lake"}, "kind"),
        ({"name": "X", "kind": "stream", "stream_subject": "sales.x"}, "stream_name"),
        ({"name": "X", "kind": "stream", "stream_name": "MARKETING_X"}, "stream_name"),
        ({"source": "warehouse", "table_name": "t"}, "name"),
        ({"name": "Orders table", "source": "warehouse", "table_name": "t"}, "name"),  # taken
        ({"name": "X", "source": "warehouse", "table_name": "t", "slug": "y"}, "slug"),
    ],
)
def test_create_port_bad_input_is_400_per_field(client_as, port, owner, body, field):
    response = client_as(owner).post(PORTS, body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert OutputPort.objects.count() == 1


def test_create_port_without_permission(client_as, product, draft, warehouse, member, outsider):
    body = {"name": "X", "source": "warehouse", "table_name": "t"}
    assert client_as(member).post(PORTS, body, format="json").status_code == 403
    assert client_as(outsider).post(PORTS, body, format="json").status_code == 403
    assert client_as(outsider).post(DRAFT_PORTS, body, format="json").status_code == 404
    assert not OutputPort.objects.exists()


def test_steward_patches_a_port(client_as, port, steward):
    response = client_as(steward).patch(
        PORT, {"description": "One row per order", "table_name": "orders_v2"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["description"] == "One row per order"
    assert response.json()["location"] == "warehouse: sales.orders_v2"
    assert response.json()["slug"] == "orders-table"


def test_patch_port_bad_input_and_permissions(client_as, port, draft_port, outsider, owner):
    response = client_as(owner).patch(PORT, {"source": "nowhere"}, format="json")
    assert response.status_code == 400
    assert "source" in response.json()
    response = client_as(owner).patch(PORT, {"table_name": ""}, format="json")
    assert response.status_code == 400
    assert "table_name" in response.json()
    assert client_as(outsider).patch(PORT, {"description": "x"}).status_code == 403
    assert client_as(outsider).patch(DRAFT_PORT, {"description": "x"}).status_code == 404
    port.refresh_from_db()
    assert port.table_name == "orders"


# --- columns -----------------------------------------------------------------------------


def test_columns_list(client_as, port, outsider):
    response = client_as(outsider).get(COLUMNS)
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["results"]] == ["order_id", "amount"]
    assert response.json()["results"][0]["data_type"] == "bigint"
    assert client_as(None).get(COLUMNS).status_code == 401


def test_steward_documents_a_column(client_as, port, steward):
    response = client_as(steward).patch(
        COLUMNS + "amount/",
        {"description": " Total in euros ", "classification": "confidential"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["description"] == "Total in euros"
    assert response.json()["classification"] == Classification.CONFIDENTIAL
    assert response.json()["data_type"] == "numeric"
    assert client_as(steward).get(COLUMNS + "amount/").json()["description"] == "Total in euros"


def test_columns_are_addressed_by_any_name(client_as, port, owner):
    ColumnFactory(port=port, name="Order Total.eur", position=2)
    response = client_as(owner).patch(
        COLUMNS + "Order%20Total.eur/", {"description": "Gross"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert port.columns.get(name="Order Total.eur").description == "Gross"


def test_column_list_queries_do_not_grow_with_columns(
    client_as, port, outsider, django_assert_max_num_queries
):
    for n in range(30):
        ColumnFactory(port=port, name=f"extra_{n}", position=10 + n)
    # product (with tags, owners), port with source, columns
    with django_assert_max_num_queries(5):
        response = client_as(outsider).get(COLUMNS)
    assert response.json()["count"] == 32


@pytest.mark.parametrize(
    "body, field",
    [
        ({"classification": "secret"}, "classification"),
        ({"data_type": "text"}, "data_type"),
        ({"name": "total"}, "name"),
    ],
)
def test_column_bad_input_is_400_per_field(client_as, port, owner, body, field):
    response = client_as(owner).patch(COLUMNS + "amount/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert port.columns.get(name="amount").data_type == "numeric"


def test_column_permissions(client_as, port, draft_port, member, outsider):
    ColumnFactory(port=draft_port, name="id")
    body = {"description": "x"}
    assert client_as(None).patch(COLUMNS + "amount/", body).status_code == 401
    assert client_as(outsider).patch(COLUMNS + "amount/", body).status_code == 403
    assert client_as(member).patch(COLUMNS + "amount/", body).status_code == 403
    assert client_as(outsider).get(DRAFT_PORT + "columns/").status_code == 404
    assert client_as(outsider).patch(DRAFT_PORT + "columns/id/", body).status_code == 404
    assert port.columns.get(name="amount").description == ""


def test_unknown_column_is_404(client_as, port, owner):
    assert client_as(owner).patch(COLUMNS + "nothing/", {"description": "x"}).status_code == 404


# --- schema refresh ----------------------------------------------------------------------


def refresh_url(port_slug: str) -> str:
    return f"/api/v1/products/sales.orders/ports/{port_slug}/schema-refresh/"


def test_schema_refresh_through_the_api(client_as, parquet_port, owner, outsider):
    response = client_as(owner).post(refresh_url("orders-file"))
    assert response.status_code == 202, response.json()
    run = response.json()
    assert run["status"] == "queued"
    assert run["is_finished"] is False
    assert response["Location"] == run["url"]
    assert run["url"].endswith(f"/api/v1/schema-refresh-runs/{run['id']}/")

    # A second request while one is queued returns the same run.
    assert client_as(owner).post(refresh_url("orders-file")).json()["id"] == run["id"]

    schema_refresh_execute(run_id=run["id"])

    polled = client_as(outsider).get(run["url"])
    assert polled.status_code == 200
    body = polled.json()
    assert body["status"] == "succeeded", body["error"]
    assert body["is_finished"] is True
    assert body["columns_added"] == ["order_id", "amount"]
    assert body["columns_removed"] == []
    assert body["product"] == "sales.orders"
    assert body["port"] == "orders-file"
    assert body["started_at"] and body["finished_at"]

    port = client_as(outsider).get(refresh_url("orders-file").replace("schema-refresh/", ""))
    assert [c["name"] for c in port.json()["columns"]] == ["order_id", "amount"]
    assert port.json()["last_refresh"]["id"] == run["id"]
    assert port.json()["last_refresh"]["status"] == "succeeded"


def test_a_failed_refresh_reads_as_failed_with_a_reason(client_as, port, owner):
    run = client_as(owner).post(refresh_url("orders-table")).json()
    schema_refresh_execute(run_id=run["id"])
    body = client_as(owner).get(run["url"]).json()
    assert body["status"] == "failed"
    assert body["error"]
    assert body["finished_at"]


def test_schema_refresh_permissions(client_as, port, draft_port, member, outsider, admin_user):
    assert client_as(None).post(refresh_url("orders-table")).status_code == 401
    assert client_as(outsider).post(refresh_url("orders-table")).status_code == 403
    assert client_as(member).post(refresh_url("orders-table")).status_code == 403
    response = client_as(outsider).post(DRAFT_PORT + "schema-refresh/")
    assert response.status_code == 404
    assert client_as(outsider).post(refresh_url("nothing")).status_code == 404
    assert not port.refresh_runs.exists()
    assert client_as(admin_user).post(refresh_url("orders-table")).status_code == 202


def test_runs_follow_their_products_visibility(client_as, draft_port, member, outsider):
    run = SchemaRefreshRun.objects.create(port=draft_port)
    url = f"/api/v1/schema-refresh-runs/{run.pk}/"
    assert client_as(None).get(url).status_code == 401
    assert client_as(outsider).get(url).status_code == 404
    assert client_as(member).get(url).status_code == 200


@pytest.mark.parametrize("run_id", ["999999", "abc"])
def test_unknown_run_is_404(client_as, outsider, run_id):
    response = client_as(outsider).get(f"/api/v1/schema-refresh-runs/{run_id}/")
    assert response.status_code == 404


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_finishes_a_refresh_requested_through_the_api(
    celery_worker, client_as, parquet_port, owner
):
    client = client_as(owner)
    response = client.post(refresh_url("orders-file"))
    assert response.status_code == 202
    url = response.json()["url"]

    def finished():
        body = client.get(url).json()
        return body if body["is_finished"] else None

    body = wait_for(finished, timeout=60, message="the worker did not finish the refresh")
    assert body["status"] == "succeeded", body["error"]
    assert body["columns_added"] == ["order_id", "amount"]


# --- data sources ------------------------------------------------------------------------


SOURCES = "/api/v1/sources/"


def test_sources_list_shows_no_connection_details(client_as, warehouse, outsider):
    response = client_as(outsider).get(SOURCES)
    assert response.status_code == 200
    [item] = response.json()["results"]
    assert set(item) == {"name", "kind", "description", "created_at"}
    assert item["name"] == "warehouse"
    assert item["kind"] == "postgresql"
    assert_no_secrets(response)


def test_sources_anonymous_is_401(client_as, warehouse):
    assert client_as(None).get(SOURCES).status_code == 401
    assert client_as(None).post(SOURCES, {"name": "x", "kind": "duckdb"}).status_code == 401


@pytest.mark.parametrize("who", ["outsider", "owner"])
def test_only_admins_register_sources(client_as, request, who):
    user = request.getfixturevalue(who)
    body = {"name": "lake", "kind": "duckdb", "path": "/data/lake.duckdb"}
    response = client_as(user).post(SOURCES, body, format="json")
    assert response.status_code == 403
    assert "admins" in response.json()["detail"]
    assert not DataSource.objects.exists()


def test_admin_registers_a_source_and_its_secret_name_is_not_returned(client_as, admin_user):
    body = {
        "name": "dwh",
        "kind": "postgresql",
        "host": "db.internal.example",
        "database": "dwh",
        "username": "svc_portal",
        "password_env": SECRET_ENV,
    }
    response = client_as(admin_user).post(SOURCES, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["name"] == "dwh"
    assert_no_secrets(response)
    assert DataSource.objects.get(name="dwh").password_env == SECRET_ENV


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x", "kind": "postgresql", "password_env": "hunter2!"}, "password_env"),
        ({"name": "x", "kind": "postgresql"}, "database"),
        ({"name": "x", "kind": "duckdb"}, "path"),
        ({"name": "x", "kind": "oracle"}, "kind"),
        ({"kind": "duckdb", "path": "/x"}, "name"),
        ({"name": "warehouse", "kind": "duckdb", "path": "/x"}, "name"),  # taken
        ({"name": "x", "kind": "duckdb", "path": "/x", "port": 70000}, "port"),
        ({"name": "x", "kind": "duckdb", "path": "/x", "password": "p"}, "password"),
    ],
)
def test_source_bad_input_is_400_per_field(client_as, warehouse, admin_user, body, field):
    response = client_as(admin_user).post(SOURCES, body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    # The rejected value is not echoed back.
    assert "hunter2" not in response.content.decode()
    assert DataSource.objects.count() == 1


def test_retired_products_ports_are_hidden_too(client_as, product, port, outsider):
    product.status = LifecycleStatus.RETIRED
    product.save()
    assert client_as(outsider).get(PORT).status_code == 404
