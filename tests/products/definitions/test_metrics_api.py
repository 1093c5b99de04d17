"""The metrics API and pages: who reads a metric's values (anonymous, no grant, a grant,
a narrowed grant with a column subset and a row filter, a domain member), bad input
answered 400 naming what is wrong, defining metrics, the audit, the notebook client."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from knox.models import AuthToken

from portal_client import Portal, PortalPermissionError, PortalRequestError
from products.catalog.services.schema_refresh import schema_apply_columns
from products.choices import LifecycleStatus
from products.connectors import connector_for_port
from products.definitions.services.metrics import metric_create
from products.models import Metric
from sharing.models import AccessEvent, AccessGrant
from tests.factories import FilePortFactory, ProductFactory
from tests.products.definitions.metric_data import PARQUET_PATH, hand_sql, orders_product

VALUES = "/api/v1/metrics/sales.revenue/values/"
PAGE = "/metrics/sales.revenue/"
NOT_CANCELLED = [{"column": "status", "op": "!=", "value": "cancelled"}]
MONTHLY_BY_CHANNEL = (
    "SELECT CAST(date_trunc('month', ordered_at AT TIME ZONE 'UTC') AS DATE), channel, "
    "sum(amount) FROM {t} WHERE status <> 'cancelled' {extra} GROUP BY 1, 2 ORDER BY 1, 2"
)
NARROW_COLUMNS = ["ordered_at", "channel", "status", "amount"]
NARROW_FILTER = [{"column": "country", "op": "=", "value": "BE"}]


@pytest.fixture
def orders(domain, owner, media_root):
    product = orders_product(engine="parquet", domain=domain, media_root=media_root)
    port = product.ports.get()
    metric_create(
        by=owner,
        port=port,
        key="sales.revenue",
        name="Net revenue",
        aggregation="sum",
        column="amount",
        filters=NOT_CANCELLED,
        dimensions=["channel", "country"],
        time_column="ordered_at",
    )
    metric_create(
        by=owner,
        port=port,
        key="sales.customers",
        name="Customers",
        aggregation="count_distinct",
        column="email",
        dimensions=["channel"],
    )
    return product


def _expected(media_root, extra: str = "") -> list[list]:
    rows = hand_sql("parquet", MONTHLY_BY_CHANNEL.replace("{extra}", extra), media_root=media_root)
    return [[period.isoformat(), channel, value] for period, channel, value in rows]


def _grant(product, user, **fields) -> AccessGrant:
    return AccessGrant.objects.create(
        product=product, user=user, expires_at=timezone.now() + timedelta(days=30), **fields
    )


def _rows(response) -> list[list]:
    data = response.json()
    return [[row[column] for column in data["columns"]] for row in data["rows"]]


@pytest.fixture
def as_user(api_client):
    def login(user):
        api_client.force_authenticate(user)
        return api_client

    return login


# --- who reads what ---------------------------------------------------------------------


def test_anonymous_is_401(api_client, orders):
    assert api_client.get(VALUES).status_code == 401
    assert not AccessEvent.objects.exists()


def test_signed_in_without_a_grant_is_403_saying_why(as_user, orders, outsider):
    response = as_user(outsider).get(VALUES, {"grain": "month", "dimensions": "channel"})
    assert response.status_code == 403
    assert "no access" in response.json()["detail"]
    assert not AccessEvent.objects.exists()
    # The definition is catalog metadata: readable without a grant.
    assert as_user(outsider).get("/api/v1/metrics/sales.revenue/").status_code == 200


def test_a_grant_reads_the_values_of_the_hand_written_sql(as_user, orders, outsider, media_root):
    _grant(orders, outsider)
    response = as_user(outsider).get(VALUES, {"grain": "month", "dimensions": "channel"})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["columns"] == ["period", "channel", "value"]
    assert _rows(response) == _expected(media_root)
    event = AccessEvent.objects.get()
    assert (event.user, event.channel, event.detail["metric"]) == (outsider, "api", "sales.revenue")


def test_a_narrowed_grant_applies_its_row_filter_and_columns(as_user, orders, outsider, media_root):
    _grant(orders, outsider, columns=NARROW_COLUMNS, row_filter=NARROW_FILTER)
    client = as_user(outsider)
    response = client.get(VALUES, {"grain": "month", "dimensions": "channel"})
    assert response.status_code == 200, response.content
    assert _rows(response) == _expected(media_root, "AND country = 'BE'")
    assert _rows(response) != _expected(media_root)
    # A dimension outside the grant's columns: 403 naming it, nothing served.
    response = client.get(VALUES, {"dimensions": "country"})
    assert response.status_code == 403 and "country" in response.json()["detail"]
    assert AccessEvent.objects.count() == 1


def test_a_masked_measure_column_is_403_naming_it(as_user, orders, outsider):
    _grant(orders, outsider)  # every column, confidential ones masked
    response = as_user(outsider).get("/api/v1/metrics/sales.customers/values/")
    assert response.status_code == 403 and "email" in response.json()["detail"]
    # A grant naming the column unmasks it.
    AccessGrant.objects.update(columns=["email", "channel"])
    response = as_user(outsider).get("/api/v1/metrics/sales.customers/values/")
    assert response.status_code == 200 and response.json()["rows"][0]["value"] == 37


def test_a_member_reads_everything(as_user, orders, member, media_root):
    response = as_user(member).get(VALUES, {"grain": "month", "dimensions": "channel"})
    assert response.status_code == 200
    assert _rows(response) == _expected(media_root)


def test_an_expired_grant_counts_from_the_next_request(as_user, orders, outsider):
    grant = _grant(orders, outsider)
    assert as_user(outsider).get(VALUES).status_code == 200
    grant.expires_at = timezone.now() - timedelta(seconds=1)
    grant.save()
    response = as_user(outsider).get(VALUES)
    assert response.status_code == 403 and "expired" in response.json()["detail"]


def test_a_metric_of_a_product_one_may_not_see_is_404(as_user, domain, owner, outsider, orders):
    draft = ProductFactory(domain=domain, slug="plan", status=LifecycleStatus.DRAFT)
    port = FilePortFactory(product=draft, slug="plan", file_path=PARQUET_PATH)
    with connector_for_port(port) as connector:
        schema_apply_columns(port=port, columns=connector.describe())
    metric_create(by=owner, port=port, key="sales.secret", name="Secret", aggregation="count")
    client = as_user(outsider)
    assert client.get("/api/v1/metrics/sales.secret/").status_code == 404
    assert client.get("/api/v1/metrics/sales.secret/values/").status_code == 404
    assert client.get("/api/v1/metrics/sales.nothing/values/").status_code == 404
    keys = [m["key"] for m in client.get("/api/v1/metrics/").json()["results"]]
    assert keys == ["sales.customers", "sales.revenue"]


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, status, words",
    [
        ({"dimensions": "status"}, 400, "no dimension status"),
        ({"dimensions": "channel,nope"}, 400, "nope"),
        ({"grain": "year"}, 400, "grain 'year'"),
        ({"start": "01/02/2025"}, 400, "start must be a date"),
        ({"start": "2025-03-01", "end": "2025-02-01"}, 400, "end is before start"),
        ({"filters": "not json"}, 400, "not valid JSON"),
        ({"filters": '[{"column": "amount", "op": ">", "value": 1}]'}, 400, "amount"),
        ({"filters": '[{"column": "country", "op": "~", "value": 1}]'}, 400, "operator"),
        ({"dimensions": "channel); DROP TABLE x; --"}, 400, "DROP TABLE"),
    ],
)
def test_bad_queries_are_400_naming_what_is_wrong(as_user, orders, member, params, status, words):
    response = as_user(member).get(VALUES, params)
    assert response.status_code == status
    assert words in response.json()["detail"]
    assert not AccessEvent.objects.exists()


def test_injection_in_a_filter_value_is_a_plain_value(as_user, orders, member):
    filters = '[{"column": "country", "op": "=", "value": "BE\' OR \'1\'=\'1"}]'
    response = as_user(member).get(VALUES, {"filters": filters})
    assert response.status_code == 200
    assert response.json()["rows"] == [{"value": None}]  # no row matches: sum is null


def test_a_grain_on_a_metric_without_time_column_is_400(as_user, orders, member):
    response = as_user(member).get("/api/v1/metrics/sales.customers/values/", {"grain": "day"})
    assert response.status_code == 400 and "no time column" in response.json()["detail"]


# --- defining metrics -------------------------------------------------------------------

CREATE = {
    "key": "sales.units",
    "name": "Units sold",
    "product": "sales.orders",
    "aggregation": "sum",
    "column": "quantity",
    "dimensions": ["channel"],
    "time_column": "ordered_at",
    "filters": NOT_CANCELLED,
}


def test_an_owner_defines_a_metric(as_user, orders, owner):
    response = as_user(owner).post("/api/v1/metrics/", CREATE, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["key"] == "sales.units" and data["measure"] == {
        "aggregation": "sum",
        "column": "quantity",
    }
    assert data["grains"] == ["day", "week", "month"] and data["denominator"] is None
    assert response["Location"].endswith("/api/v1/metrics/sales.units/")
    values = as_user(owner).get("/api/v1/metrics/sales.units/values/", {"grain": "month"})
    assert values.status_code == 200 and len(values.json()["rows"]) >= 2


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"column": "revenue_eur"}, "column", "revenue_eur"),
        ({"dimensions": ["channel", "region"]}, "dimensions", "region"),
        ({"time_column": "created"}, "time_column", "created"),
        ({"time_column": "channel"}, "time_column", "not dates or timestamps"),
        ({"column": "channel"}, "column", "numeric"),
        ({"filters": [{"column": "state", "op": "=", "value": "x"}]}, "filters", "state"),
        (
            {"denominator_aggregation": "sum", "denominator_column": "nope"},
            "denominator_column",
            "nope",
        ),  # fmt: skip
        ({"key": "marketing.units"}, "key", "starts with sales"),
        ({"key": "Sales Units"}, "key", "<domain>.<name>"),
        ({"key": "sales.revenue"}, "key", "already"),
        ({"aggregation": "median"}, "aggregation", "median"),
    ],
)
def test_a_bad_definition_is_400_naming_the_field(as_user, orders, owner, change, field, words):
    response = as_user(owner).post("/api/v1/metrics/", {**CREATE, **change}, format="json")
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])
    assert not Metric.objects.filter(key="sales.units").exists()


def test_only_the_products_editors_define_metrics(as_user, orders, member, outsider):
    assert as_user(member).post("/api/v1/metrics/", CREATE, format="json").status_code == 403
    assert as_user(outsider).post("/api/v1/metrics/", CREATE, format="json").status_code == 403
    assert not Metric.objects.filter(key="sales.units").exists()


def test_metric_list_query_count_is_pinned(
    as_user, orders, owner, outsider, django_assert_max_num_queries
):
    port = orders.ports.get()
    for n in range(10):
        metric_create(by=owner, port=port, key=f"sales.m{n}", name=f"M{n}", aggregation="count")
    with django_assert_max_num_queries(4):  # session user, count, page (with port, product)
        response = as_user(outsider).get("/api/v1/metrics/")
    assert response.json()["count"] == 12


# --- pages ------------------------------------------------------------------------------


def test_metric_page_four_ways(client, orders, outsider, member, media_root):
    assert client.get(PAGE).status_code == 302  # anonymous: to the sign-in page

    client.force_login(outsider)
    content = client.get(PAGE).content.decode()
    assert "You cannot read this metric" in content and "Request access" in content
    assert "metric-figure" not in content

    _grant(orders, outsider, columns=NARROW_COLUMNS, row_filter=NARROW_FILTER)
    response = client.get(PAGE, {"grain": "month", "dimensions": "channel"})
    assert response.status_code == 200
    expected = _expected(media_root, "AND country = 'BE'")
    rows = response.context["result"].rows
    assert [[r["period"].isoformat(), r["channel"], r["value"]] for r in rows] == expected
    content = response.content.decode()
    assert 'id="metric-figure"' in content and "country is BE" in content
    # The notebook path from the page: the client's install line and a token to create.
    assert "pip install http://testserver/client/" in content
    assert '<a href="/my/tokens/?name=Notebook' in content
    assert "<script>" not in content.replace('<script type="application/json"', "")

    client.force_login(member)
    response = client.get(PAGE, {"grain": "month", "dimensions": "channel"})
    rows = response.context["result"].rows
    assert [[r["period"].isoformat(), r["channel"], r["value"]] for r in rows] == _expected(
        media_root
    )
    channels = {event.channel for event in AccessEvent.objects.all()}
    assert channels == {"web"} and AccessEvent.objects.count() == 2


def test_metric_page_bad_query_says_what_is_wrong(client, orders, member):
    client.force_login(member)
    response = client.get(PAGE, {"filters": '[{"column": "amount", "op": ">", "value": 1}]'})
    assert response.status_code == 200
    assert "not a dimension" in response.content.decode()


def test_metric_pages_list_and_define(client, orders, owner, outsider):
    client.force_login(outsider)
    content = client.get("/metrics/").content.decode()
    assert "sales.revenue" in content and "Define a metric" not in content
    assert client.get("/metrics/new/").status_code == 403

    client.force_login(owner)
    port = orders.ports.get()
    step = client.get("/metrics/new/")
    assert step.status_code == 200 and "Choose a product" in step.content.decode()
    form = client.get("/metrics/new/", {"port": port.pk}).content.decode()
    assert 'value="quantity"' in form
    bad = client.post(
        "/metrics/new/",
        {"port": port.pk, "key": "sales.units", "name": "Units", "aggregation": "sum"},
    )
    assert bad.status_code == 400 and "Name the column" in bad.content.decode()
    good = client.post(
        "/metrics/new/",
        {
            "port": port.pk,
            "key": "sales.units",
            "name": "Units",
            "aggregation": "sum",
            "column": "quantity",
            "dimensions": ["channel"],
            "time_column": "ordered_at",
            "filters": '[{"column": "status", "op": "!=", "value": "cancelled"}]',
        },
    )
    assert good.status_code == 302 and good["Location"] == "/metrics/sales.units/"
    metric = Metric.objects.get(key="sales.units")
    assert metric.filters == NOT_CANCELLED and metric.dimensions == ["channel"]


def test_the_product_page_lists_its_metrics(client, orders, outsider):
    client.force_login(outsider)
    content = client.get(orders.get_absolute_url()).content.decode()
    assert "/metrics/sales.revenue/" in content and "Net revenue" in content


# --- the notebook client ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_notebook_metric_is_the_same_numbers(
    live_server,
    domain,
    owner,
    outsider,
    media_root,
):
    product = orders_product(engine="parquet", domain=domain, media_root=media_root)
    metric_create(
        by=owner,
        port=product.ports.get(),
        key="sales.revenue",
        name="Net revenue",
        aggregation="sum",
        column="amount",
        filters=NOT_CANCELLED,
        dimensions=["channel", "country"],
        time_column="ordered_at",
    )
    _grant(product, outsider, columns=NARROW_COLUMNS, row_filter=NARROW_FILTER)
    portal = Portal(url=live_server.url, token=AuthToken.objects.create(outsider)[1])

    frame = portal.metric("sales.revenue", grain="month", dimensions=["channel"])
    assert list(frame.columns) == ["period", "channel", "value"]
    got = [[p.date().isoformat(), c, v] for p, c, v in frame.itertuples(index=False)]
    assert got == _expected(media_root, "AND country = 'BE'")
    assert AccessEvent.objects.get().channel == "notebook"

    with pytest.raises(PortalRequestError, match="no dimension status"):
        portal.metric("sales.revenue", dimensions=["status"])
    with pytest.raises(PortalPermissionError, match="country"):
        portal.metric("sales.revenue", dimensions=["country"])


def test_metric_list_page_query_count_is_pinned(
    client, orders, owner, outsider, django_assert_max_num_queries
):
    port = orders.ports.get()
    for n in range(20):
        metric_create(by=owner, port=port, key=f"sales.m{n:02}", name=f"M{n}", aggregation="count")
    client.force_login(outsider)
    # session, user, count, page (with ports and products), "may define metrics?"
    with django_assert_max_num_queries(5):
        response = client.get("/metrics/")
    assert len(response.context["metrics"]) == 22


def _builder_columns(html: str, field: str) -> dict[str, str]:
    """The columns (name: kind) the filter builder offers on the field named `field`."""
    tag = html[html.index(f'name="{field}"') :]
    tag = tag[: tag.index(">")]
    config = tag.split('data-filter-builder="', 1)[1].split('"', 1)[0].replace("&quot;", '"')
    return {column["name"]: column["kind"] for column in json.loads(config)["columns"]}


def test_metric_filters_are_built_on_their_columns(client, orders, owner, member):
    client.force_login(member)
    page = client.get(PAGE).content.decode()
    assert '<script src="/static/js/filter_builder.js" defer></script>' in page
    # A reader filters by the metric's dimensions only; the fixed filters read in words.
    assert _builder_columns(page, "filters") == {"channel": "text", "country": "text"}
    assert "status is not cancelled" in page

    client.force_login(owner)
    form = client.get("/metrics/new/", {"port": orders.ports.get().pk}).content.decode()
    offered = _builder_columns(form, "filters")
    assert offered["quantity"] == "number" and offered["status"] == "text"
    assert offered["ordered_at"] == "timestamp"
