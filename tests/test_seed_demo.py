"""`manage.py seed_demo` builds a demo people can sign in to and read, on the warehouse of
the running mode (PostgreSQL schema or DuckDB file), and running it again changes nothing.

Transactional tests: the connectors read the warehouse over their own connections, so
the seeded rows must be committed.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from products.choices import Classification, LifecycleStatus, MembershipRole, PortKind, SourceKind
from products.connectors import connector_for_port, port_file_path
from products.models import (
    Column,
    DataProduct,
    DataSource,
    Domain,
    DomainMembership,
    OutputPort,
    Tag,
)

pytestmark = pytest.mark.django_db(transaction=True)

LOGINS = ("admin", "owner", "steward", "supply", "analyst", "viewer")


@pytest.fixture(autouse=True)
def demo_settings(settings, tmp_path):
    settings.DEMO_DUCKDB_PATH = tmp_path / "warehouse.duckdb"
    # The demo's logins are real; a fast hasher keeps two seedings quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield settings
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA IF EXISTS warehouse CASCADE")


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def catalog_state() -> dict:
    models = (get_user_model(), Domain, DomainMembership, DataProduct, Tag, DataSource)
    state = {model.__name__: model.objects.count() for model in models}
    state["products"] = sorted(DataProduct.objects.values_list("slug", "status", "updated_at"))
    state["ports"] = sorted(OutputPort.objects.values_list("slug", "schema_refreshed_at"))
    state["columns"] = sorted(
        Column.objects.values_list("port__slug", "name", "data_type", "classification")
    )
    return state


def orders_port() -> OutputPort:
    return OutputPort.objects.select_related("source").get(product__slug="orders")


def fetch_one(port: OutputPort, sql: str):
    with connector_for_port(port) as connector:
        return connector.fetch(sql.format(relation=connector.relation_sql()))[0]


def test_seeding_twice_changes_nothing_and_the_demo_is_usable():
    first = seed()
    state = catalog_state()
    second = seed()

    assert catalog_state() == state
    assert "created: nothing" in second and "updated: nothing" in second
    assert "already up to date" in second
    assert "6 users" in first and "9 products" in first

    # Every demo login signs in with the documented password.
    for username in LOGINS:
        assert Client().login(username=username, password="portal-demo"), username
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert not get_user_model().objects.get(username="analyst").is_staff

    # The warehouse of this mode holds the data; the largest table is read back in full.
    mode = SourceKind.POSTGRESQL if connection.vendor == "postgresql" else SourceKind.DUCKDB
    port = orders_port()
    assert port.source.kind == mode
    if mode == SourceKind.POSTGRESQL:
        assert port.schema_name == "warehouse"
        assert port.source.database == connection.settings_dict["NAME"]
        assert port.source.password_env == ""
    (rows,) = fetch_one(port, "SELECT count(*) FROM {relation}")
    assert rows >= 100_000


def test_domains_products_ports_and_people_fit_together():
    seed("--rows-scale", "0.05")

    assert set(Domain.objects.values_list("slug", flat=True)) == {
        "sales",
        "marketing",
        "supply-chain",
    }
    roles = set(DomainMembership.objects.values_list("domain__slug", "user__username", "role"))
    assert roles == {
        ("sales", "owner", MembershipRole.OWNER),
        ("marketing", "steward", MembershipRole.STEWARD),
        ("supply-chain", "supply", MembershipRole.OWNER),
    }
    products = {p.key: p for p in DataProduct.objects.select_related("domain")}
    assert len(products) >= 8
    assert {
        "sales.orders",
        "sales.customers",
        "marketing.campaigns",
        "supply-chain.inventory",
    } <= set(products)
    assert products["marketing.lead-scores"].status == LifecycleStatus.DRAFT
    assert products["sales.daily-revenue"].status == LifecycleStatus.DEPRECATED
    published = [p for p in products.values() if p.status == LifecycleStatus.PUBLISHED]
    assert len(published) >= 6
    for product in products.values():
        # Owners belong to the product's domain team; every product is documented.
        owners = set(product.owners.values_list("username", flat=True))
        team = set(product.domain.memberships.values_list("user__username", flat=True))
        assert owners and owners <= team, product.key
        assert product.description and product.summary and product.purpose_use_case
        assert product.tags.exists()
        port = product.ports.get()
        assert port.columns.exists(), product.key
        assert not port.columns.filter(description="").exists(), product.key
        # Every port is readable through the connector layer, files included.
        (rows,) = fetch_one(port, "SELECT count(*) FROM {relation}")
        assert rows > 0, product.key
        if port.kind == PortKind.FILE:
            assert port_file_path(port.file_path).is_file()

    file_formats = set(OutputPort.objects.values_list("file_format", flat=True))
    assert {"parquet", "csv"} <= file_formats
    customers = {c.name: c for c in Column.objects.filter(port__product__slug="customers")}
    assert customers["email"].classification == Classification.CONFIDENTIAL
    assert customers["full_name"].classification == Classification.RESTRICTED
    assert customers["customer_id"].nullable is False


def test_duckdb_warehouse_can_be_forced(settings):
    output = seed("--warehouse", "duckdb", "--rows-scale", "0.05")

    assert "warehouse (duckdb, rebuilt)" in output
    assert settings.DEMO_DUCKDB_PATH.is_file()
    port = orders_port()
    assert port.source.kind == SourceKind.DUCKDB
    assert port.source.path == str(settings.DEMO_DUCKDB_PATH)
    (rows,) = fetch_one(port, "SELECT count(*) FROM {relation}")
    assert rows == 6_000 + 37  # 5% of 120,000 order lines, plus the duplicated ones
    assert "already up to date" in seed("--warehouse", "duckdb", "--rows-scale", "0.05")


def test_planted_defects_are_there_for_the_checks_to_find():
    seed("--rows-scale", "0.05")

    duplicates = fetch_one(
        orders_port(), "SELECT count(*) - count(DISTINCT order_id) FROM {relation}"
    )
    assert duplicates == (37,)
    customers = OutputPort.objects.get(product__slug="customers")
    total, missing_email = fetch_one(
        customers, "SELECT count(*), count(*) - count(email) FROM {relation}"
    )
    assert missing_email == round(total * 0.004) > 0
    inspections = OutputPort.objects.get(product__slug="supplier-quality")
    (newest,) = fetch_one(inspections, "SELECT max(inspected_on) FROM {relation}")
    assert newest <= timezone.now().date() - timedelta(days=9)
