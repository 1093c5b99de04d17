"""The check form offers the port's known columns to pick from, so a typo cannot be
saved to fail at the first run; while no schema is known the column is typed."""

import pytest

from products.models import Check
from products.trust.services.checks import check_create
from tests.factories import FilePortFactory, ProductFactory
from tests.products.trust.helpers import orders_parquet

pytestmark = pytest.mark.django_db

NEW_CHECK = "/products/sales/orders/checks/new/"


def test_the_column_is_picked_from_the_schema(client, port, owner):
    client.force_login(owner)
    page = client.get(NEW_CHECK).content.decode()
    assert '<select name="column"' in page
    assert '<option value="email">email</option>' in page
    assert '<option value="order_id">order_id</option>' in page

    response = client.post(
        NEW_CHECK,
        {
            "kind": "not_null",
            "column": "emial",
            "severity": "error",
            "tolerance_percent": "0",
            "enabled": "on",
        },
    )
    assert response.status_code == 400
    assert "emial" in " ".join(response.context["form"].errors["column"])
    assert not Check.objects.exists()


def test_a_check_whose_column_left_the_schema_still_shows_it_when_edited(client, port, owner):
    check = check_create(port=port, by=owner, kind="not_null", column="email", name="Email set")
    port.columns.filter(name="email").delete()
    client.force_login(owner)
    page = client.get(f"/products/sales/orders/checks/{check.pk}/edit/").content.decode()
    assert '<option value="email" selected>email (not in the schema)</option>' in page


def test_without_a_known_schema_the_column_is_typed(client, domain, owner, media_root):
    product = ProductFactory(domain=domain, name="Bare", slug="bare", owners=[owner])
    FilePortFactory(
        product=product, slug="bare", file_path=orders_parquet(media_root, "bare.parquet", ["a"])
    )
    client.force_login(owner)
    page = client.get("/products/sales/bare/checks/new/").content.decode()
    assert '<select name="column"' not in page
    assert 'list="known-columns"' in page
