"""A port's table or file is checked on the source when the page saves it, with the
tables the domain may use offered as people type: a typo is refused with a suggestion,
not saved to fail later as "could not run"."""

import html

import duckdb
import pytest

from products.choices import MembershipRole
from products.models import OutputPort
from tests.factories import (
    DataSourceFactory,
    DomainFactory,
    MembershipFactory,
    OutputPortFactory,
    UserFactory,
    source_allowance,
)

pytestmark = pytest.mark.django_db

ADD = "/products/sales/orders/ports/new/"
RELATIONS = "/products/sales/orders/ports/relations/"


@pytest.fixture
def warehouse(tmp_path, domain):
    """`sales.orders`, `sales.customers` and `finance.orders` are Sales's to use;
    `finance.salaries` and `hr.people` are not."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        for schema, table in [
            ("sales", "orders"),
            ("sales", "customers"),
            ("finance", "orders"),
            ("finance", "salaries"),
            ("hr", "people"),
        ]:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute(f"CREATE TABLE {schema}.{table} AS SELECT 1 AS id")
    source = DataSourceFactory(name="warehouse", path=str(path), domains=[])
    source_allowance(source=source, domain=domain, schema_name="sales")
    source_allowance(source=source, domain=domain, schema_name="finance", relations=["orders"])
    return source


def _table_port(source, table, **extra):
    return {
        "name": "Orders table",
        "kind": "table",
        "source": source.pk,
        "schema_name": "sales",
        "table_name": table,
        **extra,
    }


def test_a_typo_in_the_table_is_refused_with_a_suggestion(client, product, owner, warehouse):
    client.force_login(owner)
    response = client.post(ADD, _table_port(warehouse, "ordrs"))
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "There is no table or view sales.ordrs on data source 'warehouse'." in page
    assert "Did you mean orders?" in page
    assert not OutputPort.objects.exists()
    # Everything typed is kept.
    assert response.context["form"]["table_name"].value() == "ordrs"

    response = client.post(ADD, _table_port(warehouse, "orders"))
    assert response.status_code == 302
    assert product.ports.get().table_name == "orders"


def test_save_anyway_declares_a_port_whose_table_is_still_being_built(
    client, product, owner, warehouse
):
    client.force_login(owner)
    response = client.post(ADD, _table_port(warehouse, "orders_v2", save_anyway="on"))
    assert response.status_code == 302
    assert product.ports.get().table_name == "orders_v2"


def test_editing_a_port_whose_table_is_gone_still_saves_its_description(
    client, product, owner, warehouse
):
    port = OutputPortFactory(
        product=product, source=warehouse, schema_name="sales", table_name="gone", slug="gone"
    )
    client.force_login(owner)
    data = _table_port(warehouse, "gone", name="Gone", description="Rebuilt nightly")
    response = client.post(f"/products/sales/orders/ports/{port.slug}/edit/", data)
    assert response.status_code == 302
    port.refresh_from_db()
    assert port.description == "Rebuilt nightly"
    # Moving it to another missing table is checked.
    data["table_name"] = "also_gone"
    response = client.post(f"/products/sales/orders/ports/{port.slug}/edit/", data)
    assert response.status_code == 400
    port.refresh_from_db()
    assert port.table_name == "gone"


def test_a_missing_file_is_refused_and_an_unreachable_source_says_so(client, product, owner):
    client.force_login(owner)
    response = client.post(
        ADD,
        {
            "name": "Daily",
            "kind": "file",
            "file_path": "uploads/sales/none.parquet",
            "file_format": "parquet",
        },
    )
    assert response.status_code == 400
    assert "There is no file uploads/sales/none.parquet" in html.unescape(response.content.decode())
    broken = DataSourceFactory(name="broken", path="/nonexistent/warehouse.duckdb")
    response = client.post(ADD, _table_port(broken, "orders"))
    assert response.status_code == 400
    assert "could not be reached to check the table" in html.unescape(response.content.decode())
    assert not OutputPort.objects.exists()


def test_the_table_browser_offers_only_what_the_domain_may_use(client, product, owner, warehouse):
    client.force_login(owner)
    found = client.get(RELATIONS, {"source": warehouse.pk, "schema": "sales"}).json()
    assert found["schemas"] == ["finance", "sales"]
    assert found["tables"] == ["customers", "orders"]
    found = client.get(RELATIONS, {"source": warehouse.pk, "schema": "finance"}).json()
    assert found["tables"] == ["orders"]  # not salaries
    found = client.get(RELATIONS, {"source": warehouse.pk, "schema": "hr"}).json()
    assert found["tables"] == []
    assert client.get(RELATIONS, {"source": "x"}).status_code == 400
    assert client.get(RELATIONS, {"source": 999999}).status_code == 400


def test_the_table_browser_is_for_the_products_editors_only(client, product, warehouse):
    marketing = DomainFactory(name="Marketing", slug="marketing")
    other_steward = UserFactory(username="marketing-steward")
    MembershipFactory(domain=marketing, user=other_steward, role=MembershipRole.STEWARD)
    for user in (other_steward, UserFactory(username="reader")):
        client.force_login(user)
        response = client.get(RELATIONS, {"source": warehouse.pk, "schema": "sales"})
        assert response.status_code in (403, 404)
        assert b"customers" not in response.content
