"""The demo's syncs: after seeding, Sales' Customers product has a sync that ran and
succeeded (its records in the demo CRM's DuckDB table) and one whose first run is held by
its per-column limit, waiting in the owner's work inbox; a metric's values went to the
finance table; the sync pages answer; seeding
again runs nothing twice. Transactional: the seeding's reads go through the warehouse's
own connections."""

from io import StringIO

import duckdb
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from products.demo.syncs import ACCOUNTS, REVENUE, VALUES, crm_path
from sharing.models import Sync, SyncRun
from sharing.syncs.selectors import sync_runs_held_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("demo_settings")]


def crm_count(table: str) -> int:
    with duckdb.connect(str(crm_path())) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_one_sync_succeeded_and_one_is_held_in_the_owner_s_inbox():
    call_command("seed_demo", "--rows-scale", "0.05", stdout=StringIO())
    owner = get_user_model().objects.get(username="owner")
    segments = Sync.objects.get(name="Customer segments to the CRM")
    value = Sync.objects.get(name="Lifetime value to the CRM")
    assert segments.product.key == value.product.key == "sales.customers"

    (done,) = segments.runs.all()
    assert done.status == "succeeded", done.error
    assert done.added > 0
    assert crm_count(ACCOUNTS) == done.added

    (held,) = value.runs.all()
    assert held.status == "held"
    assert held.held_reasons[0]["guardrail"] == "column_limits"
    assert crm_count(VALUES) == 0
    assert list(sync_runs_held_for(user=owner)) == [held]

    client = Client()
    client.force_login(owner)
    customers = segments.product
    slugs = [customers.domain.slug, customers.slug]
    tab = client.get(reverse("sharing:product-syncs", args=slugs))
    assert tab.status_code == 200
    page = client.get(reverse("sharing:sync-detail", args=[*slugs, value.pk]))
    assert f"Run #{held.pk} is held for approval" in page.content.decode()

    # The metric sales.revenue per country and month, as its page shows it, in finance's table.
    revenue = Sync.objects.get(name="Monthly revenue to finance")
    (sent,) = revenue.runs.all()
    assert sent.status == "succeeded", sent.error
    assert (revenue.metric.key, revenue.columns) == (
        "sales.revenue",
        ["period", "country", "value"],
    )
    assert crm_count(REVENUE) == sent.added > 0

    call_command("seed_demo", "--rows-scale", "0.05", stdout=StringIO())
    assert SyncRun.objects.count() == 3 and Sync.objects.count() == 3
