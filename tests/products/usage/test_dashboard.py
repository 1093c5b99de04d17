"""The usage dashboard: most used (last 30 days), fastest growing (against the 30 days
before) and unused (no read in 90 days), among the products the user may see, from the
hourly usage summaries (which must agree with the audit); a constant number of queries;
the page and the API."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from products.catalog.services.page_views import product_view_record
from products.choices import LifecycleStatus, MembershipRole
from products.models import DataProduct, ProductUsageSummary, UsageSummaryRun
from products.retirement.services import retirement_propose
from products.usage.selectors import products_unused, usage_dashboard
from products.usage.services import usage_summaries_refresh
from sharing.choices import AuditAction, Channel
from sharing.models import AccessEvent
from tests.factories import DomainFactory, MembershipFactory, ProductFactory, UserFactory

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


def reads(product, count, *, days_ago, now=NOW, user=None):
    AccessEvent.objects.bulk_create(
        AccessEvent(
            at=now - timedelta(days=days_ago, minutes=i),
            action=AuditAction.READ,
            user=user,
            product=product,
            product_key=product.key,
            channel=Channel.API,
        )
        for i in range(count)
    )


def views(product, count, *, days_ago, now=NOW):
    day = (now - timedelta(days=days_ago)).date()
    for _ in range(count):
        product_view_record(product=product, user=UserFactory(), by_editor=False, day=day)


def backdate(*products, days: int, now=NOW):
    DataProduct.objects.filter(pk__in=[p.pk for p in products]).update(
        created_at=now - timedelta(days=days), published_at=now - timedelta(days=days)
    )


@pytest.fixture
def catalog(domain, owner):
    hr = DomainFactory(name="HR", slug="hr")
    made = {
        "steady": ProductFactory(domain=domain, name="Steady"),
        "new-hit": ProductFactory(domain=domain, name="New hit"),
        "rising": ProductFactory(domain=domain, name="Rising"),
        "forgotten": ProductFactory(domain=domain, name="Forgotten"),
        "faded": ProductFactory(domain=domain, name="Faded"),
        "fresh": ProductFactory(domain=domain, name="Fresh"),
        "hr-draft": ProductFactory(domain=hr, name="Salaries", status=LifecycleStatus.DRAFT),
        "hr-retired": ProductFactory(domain=hr, name="Old org", status=LifecycleStatus.RETIRED),
        "hr-quiet": ProductFactory(domain=hr, name="Headcount"),
    }
    backdate(*[p for key, p in made.items() if key != "fresh"], days=200)
    backdate(made["fresh"], days=10)
    reads(made["steady"], 10, days_ago=3)
    views(made["steady"], 2, days_ago=1)
    reads(made["steady"], 12, days_ago=40)
    reads(made["new-hit"], 5, days_ago=2)
    reads(made["rising"], 3, days_ago=5)
    reads(made["rising"], 1, days_ago=35)
    reads(made["faded"], 6, days_ago=45)
    reads(made["hr-draft"], 100, days_ago=1)
    reads(made["hr-retired"], 50, days_ago=1)
    usage_summaries_refresh(now=NOW)
    return made


def names(rows):
    return [row.product.name for row in rows]


def test_ordering_most_used_growing_unused(catalog, outsider):
    dashboard = usage_dashboard(user=outsider)
    assert dashboard.as_of == NOW
    assert names(dashboard.most_used) == ["Steady", "New hit", "Rising"]
    steady = dashboard.most_used[0]
    assert (steady.reads, steady.views, steady.use, steady.use_previous) == (10, 2, 12, 12)
    assert names(dashboard.fastest_growing) == ["New hit", "Rising"]
    new_hit, rising = dashboard.fastest_growing
    assert (new_hit.growth, new_hit.growth_percent) == (5, None)
    assert (rising.growth, rising.growth_percent) == (2, 200.0)
    # Unused: out for more than 90 days, no read in 90 days. "Faded" was read 45 days
    # ago, "Fresh" is new; drafts and retired products of other domains never show.
    # By domain, then name: HR before Sales.
    assert [row.product.name for row in dashboard.unused] == ["Headcount", "Forgotten"]
    assert dashboard.unused_count == 2
    assert dashboard.unused[0].last_read_at is None
    assert not any(row.can_edit for row in dashboard.unused)


def test_an_outsider_never_sees_other_domains_drafts(catalog, outsider, admin_user):
    hidden = {"Salaries", "Old org"}
    for scope in ("all", "mine"):
        dashboard = usage_dashboard(user=outsider, scope=scope)
        listed = {
            *names(dashboard.most_used),
            *names(dashboard.fastest_growing),
            *(row.product.name for row in dashboard.unused),
        }
        assert not listed & hidden
    assert usage_dashboard(user=outsider, scope="mine").most_used == []

    hr_member = UserFactory()
    MembershipFactory(domain=catalog["hr-draft"].domain, user=hr_member, role=MembershipRole.MEMBER)
    for user in (hr_member, admin_user):
        dashboard = usage_dashboard(user=user)
        assert names(dashboard.most_used)[:2] == ["Salaries", "Old org"]


def test_mine_is_the_domains_i_manage(catalog, owner):
    dashboard = usage_dashboard(user=owner, scope="mine")
    assert names(dashboard.most_used) == ["Steady", "New hit", "Rising"]
    assert [row.product.name for row in dashboard.unused] == ["Forgotten"]
    assert dashboard.unused[0].can_edit


def test_an_open_proposal_shows_instead_of_the_action(catalog, owner):
    retirement_propose(product=catalog["forgotten"], by=owner, reason="Nobody reads it.", now=NOW)
    row = usage_dashboard(user=owner, scope="mine").unused[0]
    assert row.proposal is not None and row.proposal.status == "proposed"


def test_the_dashboard_costs_a_constant_number_of_queries(
    catalog, domain, outsider, django_assert_num_queries
):
    with django_assert_num_queries(8):
        usage_dashboard(user=outsider)
    more = [ProductFactory(domain=domain) for _ in range(25)]
    backdate(*more, days=200)
    for product in more[:10]:
        reads(product, 2, days_ago=1)
        views(product, 1, days_ago=1)
    usage_summaries_refresh(now=NOW)
    with django_assert_num_queries(8):
        dashboard = usage_dashboard(user=outsider, limit=5, unused_limit=5)
    assert len(dashboard.most_used) == 5 and len(dashboard.unused) == 5
    assert dashboard.unused_count == 2 + 15


def test_summaries_agree_with_the_audit(catalog, admin_user):
    summaries = {s.product.name: s for s in ProductUsageSummary.objects.select_related("product")}
    # Rows for products with use in the windows, and for the unused (flagged); none for
    # the new product.
    used = {"Steady", "New hit", "Rising", "Faded", "Salaries", "Old org"}
    assert set(summaries) == used | {"Forgotten", "Headcount"}
    assert {name for name, s in summaries.items() if s.unused} == {"Forgotten", "Headcount"}
    assert summaries["Forgotten"].use == 0 and summaries["Forgotten"].last_read_at is None
    steady = summaries["Steady"]
    assert (steady.reads, steady.reads_previous, steady.views, steady.use, steady.growth) == (
        10,
        12,
        2,
        12,
        0,
    )
    assert steady.last_read_at == NOW - timedelta(days=3)
    assert summaries["Faded"].use == 0 and summaries["Faded"].last_read_at is not None
    # "Unused" from the summaries is exactly the audit's rule (the retirement flag's).
    dashboard = usage_dashboard(user=admin_user)
    assert {row.product.pk for row in dashboard.unused} == set(
        products_unused(now=NOW).values_list("pk", flat=True)
    )


def test_a_refresh_rewrites_every_row(catalog):
    later = NOW + timedelta(days=50)
    run = usage_summaries_refresh(now=later)
    assert run.products == ProductUsageSummary.objects.count()
    rows = {s.product.name: s for s in ProductUsageSummary.objects.select_related("product")}
    # Faded's last read is now 95 days old: no row. Rising's 3 reads of 55 days ago are
    # in the previous window, its read of 85 days ago only inside the 90 that decide
    # "unused".
    assert not rows["Faded"].use and rows["Faded"].unused
    assert (rows["Rising"].use, rows["Rising"].use_previous) == (0, 3)
    assert not rows["Rising"].unused
    assert rows["Rising"].last_read_at == NOW - timedelta(days=5)
    assert not ProductUsageSummary.objects.exclude(computed_at=later).exists()
    # Runs are kept 30 days: the first one (50 days earlier) is gone.
    assert list(UsageSummaryRun.objects.values_list("computed_at", flat=True)) == [later]


def test_before_the_first_computation_the_dashboard_says_so(client, outsider, domain):
    backdate(ProductFactory(domain=domain), days=200)
    dashboard = usage_dashboard(user=outsider)
    assert dashboard.as_of is None and dashboard.unused == [] and dashboard.most_used == []
    client.force_login(outsider)
    html = client.get("/usage/").content.decode()
    assert "The usage figures have not been computed yet" in html


# --- the page and the API --------------------------------------------------------------


@pytest.fixture
def live(domain, owner):
    """A small catalog relative to the real clock (pages and the API use it)."""
    used = ProductFactory(domain=domain, name="Orders", slug="orders")
    idle = ProductFactory(domain=domain, name="Legacy", slug="legacy")
    now = timezone.now()
    backdate(used, idle, days=200, now=now)
    reads(used, 4, days_ago=1, now=now)
    usage_summaries_refresh()
    return used, idle


def test_page(client, live, owner, outsider, django_assert_max_num_queries):
    client.force_login(outsider)
    with django_assert_max_num_queries(12):
        response = client.get("/usage/")
    assert response.status_code == 200
    html = response.content.decode()
    # Everyone signed in may open it; the top bar links to it for the teams that run
    # products (portal_display.main_nav), not for readers.
    assert 'href="/usage/"' not in html
    assert 'id="most-used-chart-data"' in html and "Orders" in html and "Legacy" in html
    assert "Propose retirement" not in html  # outsiders cannot propose

    client.force_login(owner)
    html = client.get("/usage/?scope=mine").content.decode()
    assert 'href="/usage/" aria-current="page"' in html  # the nav link
    assert "Propose retirement" in html
    assert "/products/sales/legacy/retirement/#propose" in html


def test_page_empty_states(client, outsider, db):
    usage_summaries_refresh()
    client.force_login(outsider)
    html = client.get("/usage/").content.decode()
    assert "No product was read or viewed in the last 30 days" in html
    assert "Nothing to retire" in html


def test_api(api_client, live, owner, outsider, django_assert_max_num_queries):
    assert api_client.get("/api/v1/usage/").status_code == 401
    api_client.force_authenticate(outsider)
    with django_assert_max_num_queries(8):
        response = api_client.get("/api/v1/usage/")
    assert response.status_code == 200
    data = response.json()
    assert [row["product"]["key"] for row in data["most_used"]] == ["sales.orders"]
    assert data["most_used"][0]["reads"] == 4 and data["most_used"][0]["use"] == 4
    assert data["fastest_growing"][0]["growth_percent"] is None
    assert data["unused"]["count"] == 1
    legacy = data["unused"]["products"][0]
    assert legacy["product"]["key"] == "sales.legacy" and legacy["can_propose"] is False

    api_client.force_authenticate(owner)
    data = api_client.get("/api/v1/usage/", {"scope": "mine"}).json()
    assert data["unused"]["products"][0]["can_propose"] is True

    response = api_client.get("/api/v1/usage/", {"scope": "everything"})
    assert response.status_code == 400 and "scope" in response.json()
