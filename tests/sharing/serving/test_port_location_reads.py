"""A port's location is checked again by the work that reads it, not only when it is
saved: a port on another domain's table (saved before sources belonged to domains, or
whose allowance an admin withdrew) is read by no channel, no check and no metric."""

import json

import duckdb
import pytest

from products.choices import CheckRunStatus, MembershipRole, PortKind
from products.models import OutputPort, SourceAllowance
from products.trust.services.checks import check_create, check_run_execute, check_run_request
from tests.factories import (
    ColumnFactory,
    DataSourceFactory,
    DomainFactory,
    MembershipFactory,
    UserFactory,
    source_allowance,
)

DATA = "/api/v1/products/sales.orders/data/?format=json"


@pytest.fixture
def warehouse(tmp_path, domain):
    """`sales.orders` belongs to Sales, `marketing.leads` to Marketing."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA sales")
        conn.execute("CREATE TABLE sales.orders AS SELECT 1 AS id, 'BE' AS country")
        conn.execute("CREATE SCHEMA marketing")
        conn.execute("CREATE TABLE marketing.leads AS SELECT 7 AS id, 'secret' AS country")
    marketing = DomainFactory(name="Marketing", slug="marketing")
    source = DataSourceFactory(name="warehouse", path=str(path), domains=[])
    source_allowance(source=source, domain=domain, schema_name="sales")
    source_allowance(source=source, domain=marketing, schema_name="marketing")
    return source


def port_on(product, source, schema_name, table_name):
    """A port written straight to the table, as one saved before the rule existed."""
    port = OutputPort.objects.create(
        product=product,
        name="Orders",
        slug="orders",
        kind=PortKind.TABLE,
        source=source,
        schema_name=schema_name,
        table_name=table_name,
    )
    for position, name in enumerate(["id", "country"]):
        ColumnFactory(port=port, name=name, data_type="VARCHAR", position=position)
    return port


def read_as(user, api_client):
    api_client.force_authenticate(user)
    return api_client.get(DATA)


def test_a_port_on_another_domains_table_is_served_to_nobody(
    product, warehouse, owner, grantee, admin_user, api_client
):
    port_on(product, warehouse, "marketing", "leads")
    for user in (grantee, owner, admin_user):
        response = read_as(user, api_client)
        assert response.status_code == 403, user
        assert "secret" not in response.content.decode()
        assert "may not serve" in response.json()["detail"]


def test_a_withdrawn_allowance_stops_the_next_read(product, warehouse, grantee, api_client):
    port_on(product, warehouse, "sales", "orders")
    served = read_as(grantee, api_client)
    assert json.loads(b"".join(served.streaming_content))[0]["country"] == "BE"
    SourceAllowance.objects.filter(source=warehouse, domain=product.domain).delete()
    assert read_as(grantee, api_client).status_code == 403


def test_a_check_on_another_domains_table_does_not_run(product, warehouse, owner, domain):
    steward = UserFactory(username="sales-steward")
    MembershipFactory(domain=domain, user=steward, role=MembershipRole.STEWARD)
    port = port_on(product, warehouse, "sales", "orders")
    check_create(port=port, by=owner, name="rows", kind="row_count", params={"min": 1})
    port.schema_name, port.table_name = "marketing", "leads"
    port.save(update_fields=["schema_name", "table_name"])
    run = check_run_execute(run_id=check_run_request(port=port, by=steward).pk)
    assert run.status == CheckRunStatus.ERROR
    # The run's error is for the domain's members: the rule that refused the port.
    assert "only in schema sales, not 'marketing'" in run.error
    assert not run.results.exists()
