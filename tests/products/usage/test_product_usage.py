"""Usage: page views (one UPSERT each, editors not counted), data reads from the audit,
the product's daily series (views, distinct viewers, reads by channel, distinct readers)
and its totals, on the selector, the Usage tab and the API; who sees readers' names."""

from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.core.plotly_assets import PLOTLY_BUNDLE
from products.catalog.services.page_views import product_view_record
from products.choices import LifecycleStatus
from products.models import ProductPageView
from products.usage.selectors import product_usage, usage_chart_data
from sharing.choices import AuditAction, Channel
from sharing.models import AccessEvent
from tests.factories import DomainFactory, ProductFactory, UserFactory

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def read(product, user, at, channel=Channel.API):
    return AccessEvent.objects.create(
        at=at,
        action=AuditAction.READ,
        user=user,
        product=product,
        product_key=product.key,
        channel=channel,
    )


# --- page views ------------------------------------------------------------------------


def test_a_page_view_is_one_upsert_and_editors_are_not_counted(
    client, product, outsider, owner, steward
):
    client.force_login(outsider)
    url = product.get_absolute_url()
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    writes = [q["sql"] for q in captured if "productpageview" in q["sql"].lower()]
    assert len(writes) == 1 and writes[0].startswith("INSERT")
    assert "ON CONFLICT" in writes[0]
    client.get(url)
    # The page refreshing itself on a live event is the same visit: not counted again.
    assert client.get(url, HTTP_X_LIVE_REFRESH="1").status_code == 200
    row = ProductPageView.objects.get()
    assert (row.user, row.views, row.day) == (outsider, 2, timezone.now().date())

    for editor in (owner, steward):
        client.force_login(editor)
        assert client.get(url).status_code == 200
    assert ProductPageView.objects.get().views == 2  # still only the outsider's


def test_views_count_per_person_and_day(product, outsider, member):
    other = UserFactory()
    for day, user in [(TODAY, outsider), (TODAY, outsider), (TODAY, other), (TODAY, member)]:
        assert product_view_record(product=product, user=user, by_editor=False, day=day)
    assert not product_view_record(product=product, user=outsider, by_editor=True, day=TODAY)
    yesterday = TODAY - timedelta(days=1)
    product_view_record(product=product, user=outsider, by_editor=False, day=yesterday)
    rows = {(r.user_id, r.day): r.views for r in ProductPageView.objects.all()}
    assert rows == {
        (outsider.pk, TODAY): 2,
        (other.pk, TODAY): 1,
        (member.pk, TODAY): 1,
        (outsider.pk, yesterday): 1,
    }


# --- the series ------------------------------------------------------------------------


def test_usage_series_equals_what_was_recorded(product, outsider, owner):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    d0 = TODAY - timedelta(days=2)
    d1 = TODAY
    product_view_record(product=product, user=alice, by_editor=False, day=d0)
    product_view_record(product=product, user=alice, by_editor=False, day=d0)
    product_view_record(product=product, user=bob, by_editor=False, day=d0)
    product_view_record(product=product, user=alice, by_editor=False, day=d1)
    at0 = datetime.combine(d0, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    read(product, alice, at0, Channel.API)
    read(product, alice, at0 + timedelta(hours=1), Channel.API)
    read(product, bob, at0, Channel.DOWNLOAD)
    read(product, None, at0, Channel.SHARE_LINK)  # someone holding a share link
    read(product, bob, NOW - timedelta(hours=1), Channel.NOTEBOOK)
    # Outside the window, another product, not a read: none of them count.
    read(product, alice, NOW - timedelta(days=95), Channel.API)
    read(ProductFactory(domain=product.domain), alice, NOW, Channel.API)
    AccessEvent.objects.create(
        at=NOW, action=AuditAction.READ_DENIED, user=outsider, product=product, product_key="x"
    )

    usage = product_usage(product=product, days=90, now=NOW)
    assert (usage.start, usage.end, len(usage.series)) == (TODAY - timedelta(days=89), TODAY, 90)
    by_day = {day.day: day for day in usage.series}
    first = by_day[d0]
    assert (first.views, first.viewers, first.reads, first.readers) == (3, 2, 4, 2)
    assert first.by_channel == {"api": 2, "download": 1, "share_link": 1}
    last = by_day[d1]
    assert (last.views, last.viewers, last.reads, last.readers) == (1, 1, 1, 1)
    assert last.by_channel == {"notebook": 1}
    quiet = [d for d in usage.series if d.day not in (d0, d1)]
    assert all((d.views, d.reads, d.by_channel) == (0, 0, {}) for d in quiet)
    assert (usage.views, usage.viewers, usage.reads, usage.readers) == (4, 2, 5, 2)
    assert usage.by_channel["api"] == 2 and usage.by_channel["preview"] == 0
    assert usage.channels_used == ["api", "download", "notebook", "share_link"]
    assert usage.last_read_at == NOW - timedelta(hours=1)
    assert usage.top_readers is None

    chart = usage_chart_data(usage)
    assert chart["days"][0] == usage.start.isoformat() and len(chart["views"]) == 90
    assert {trace["channel"] for trace in chart["reads"]} == set(usage.channels_used)

    named = product_usage(product=product, days=7, now=NOW, with_readers=True)
    assert [(r["username"], r["reads"]) for r in named.top_readers] == [("alice", 2), ("bob", 2)]
    assert named.reads == 5 and len(named.series) == 7


def test_usage_queries_do_not_grow_with_traffic(product, django_assert_num_queries):
    with django_assert_num_queries(6):
        product_usage(product=product, now=NOW)
    users = [UserFactory() for _ in range(5)]
    for offset in range(30):
        for user in users:
            product_view_record(
                product=product, user=user, by_editor=False, day=TODAY - timedelta(days=offset)
            )
            read(product, user, NOW - timedelta(days=offset), Channel.PREVIEW)
    with django_assert_num_queries(6):
        usage = product_usage(product=product, now=NOW)
    with django_assert_num_queries(7):
        product_usage(product=product, now=NOW, with_readers=True)
    assert (usage.views, usage.viewers, usage.reads, usage.readers) == (150, 5, 150, 5)


# --- the Usage tab and the API ---------------------------------------------------------


def _recent_traffic(product, users):
    now = timezone.now()
    # Earlier today (UTC), whatever the time of day: the series' last day is today.
    earlier_today = max(now - timedelta(hours=2), now.replace(hour=0, minute=0, second=0))
    for user in users:
        read(product, user, earlier_today, Channel.DOWNLOAD)
        product_view_record(product=product, user=user, by_editor=False)


def test_usage_tab_shows_totals_and_chart_names_only_to_editors(client, product, outsider, owner):
    reader = UserFactory(username="reader-one")
    _recent_traffic(product, [reader])
    url = f"{product.get_absolute_url()}usage/"

    client.force_login(outsider)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="usage-chart-data" type="application/json"' in html
    assert PLOTLY_BUNDLE in html and "js/usage.js" in html
    assert "reader-one" not in html  # names are for editors
    assert response.context["usage"].reads == 1
    # No inline code: every <script> either loads a file or carries JSON.
    for tag in html.split("<script")[1:]:
        head = tag.split(">", 1)[0]
        assert "src=" in head or 'type="application/json"' in head, head

    client.force_login(owner)
    html = client.get(url).content.decode()
    assert "reader-one" in html


def test_usage_tab_without_traffic_says_so(client, product, owner):
    client.force_login(owner)
    html = client.get(f"{product.get_absolute_url()}usage/").content.decode()
    assert "No page views or data reads in the last 90 days" in html
    assert "usage-chart-data" not in html


def test_usage_tab_of_a_hidden_product_is_404(client, outsider):
    draft = ProductFactory(domain=DomainFactory(slug="hr"), status=LifecycleStatus.DRAFT)
    client.force_login(outsider)
    assert client.get(f"{draft.get_absolute_url()}usage/").status_code == 404


def test_usage_api(api_client, product, outsider, owner, django_assert_max_num_queries):
    url = f"/api/v1/products/{product.key}/usage/"
    assert api_client.get(url).status_code == 401
    reader = UserFactory(username="reader-two")
    _recent_traffic(product, [reader, outsider])

    api_client.force_authenticate(outsider)
    # the product (row, tags, owners), the role (names or not), the 6 usage queries
    with django_assert_max_num_queries(10):
        response = api_client.get(url)
    assert response.status_code == 200
    data = response.json()
    assert data["product"] == "sales.orders" and data["days"] == 90
    assert (data["reads"], data["readers"], data["views"], data["viewers"]) == (2, 2, 2, 2)
    assert data["by_channel"]["download"] == 2
    assert len(data["series"]) == 90 and data["series"][-1]["reads"] == 2
    assert data["top_readers"] is None

    api_client.force_authenticate(owner)
    data = api_client.get(url, {"days": 7}).json()
    assert len(data["series"]) == 7
    assert {r["username"] for r in data["top_readers"]} == {"reader-two", "outsider"}

    for bad in ("3", "400", "many"):
        response = api_client.get(url, {"days": bad})
        assert response.status_code == 400 and "days" in response.json()

    hidden = ProductFactory(domain=DomainFactory(slug="hr"), status=LifecycleStatus.DRAFT)
    api_client.force_authenticate(outsider)
    assert api_client.get(f"/api/v1/products/{hidden.key}/usage/").status_code == 404


def test_day_boundaries_are_utc(product, outsider):
    """A read at 23:30 UTC counts on its UTC day, whatever the viewer's clock."""
    late = datetime(2025, 6, 14, 23, 30, tzinfo=UTC)
    read(product, outsider, late)
    usage = product_usage(product=product, days=7, now=NOW)
    assert {d.day: d.reads for d in usage.series if d.reads} == {date(2025, 6, 14): 1}
