"""The Usage tab counts each embed's views and CSV downloads; per tenant (the values of its
locked parameters, which name the host's customers) for the product's editors only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from products.usage.selectors import embed_usage
from sharing.embeds.services.embeds import embed_create
from sharing.models import EmbedViewDay
from tests.sharing.readers import grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def embed(pg_product, owner):
    return embed_create(
        by=owner,
        product=pg_product,
        title="Your orders",
        chart="table",
        columns=["order_id", "amount"],
        locked_params={"tenant": "country"},
        allowed_origins=["https://shop.example.com"],
    )


def test_views_per_embed_and_tenant_on_the_usage_tab(embed, pg_product, owner, outsider, client):
    today = timezone.now().date()
    for day, tenant, views, downloads in (
        (today, "tenant=BE", 5, 1),
        (today - timedelta(days=1), "tenant=BE", 2, 0),
        (today, "tenant=NL", 3, 0),
        (today - timedelta(days=200), "tenant=FR", 99, 9),  # outside the 90 days
    ):
        EmbedViewDay.objects.create(
            embed=embed, day=day, tenant=tenant, views=views, downloads=downloads
        )
    (usage,) = embed_usage(product=pg_product, with_tenants=True)
    assert (usage.views, usage.downloads) == (10, 1)
    assert usage.tenants == [
        {"tenant": "tenant=BE", "views": 7, "downloads": 1},
        {"tenant": "tenant=NL", "views": 3, "downloads": 0},
    ]
    url = f"/products/{pg_product.domain.slug}/{pg_product.slug}/usage/"
    client.force_login(owner)
    page = client.get(url).content.decode()
    assert "Embedded views" in page and "Your orders" in page
    assert "tenant=BE: 7 views, 1 download" in page
    grant(pg_product, outsider)
    client.force_login(outsider)
    page = client.get(url).content.decode()
    assert "Your orders" in page and "tenant=BE" not in page  # totals only
