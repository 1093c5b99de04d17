"""The portal's own pages of embeds with Django's test client: a product's embeds (who sees
which, views of the last 30 days, the empty states), the new-embed form (errors beside
their field, nothing saved; the refusal of someone who may not share), an embed's page
(settings, snippets, signing, 404 for whoever may not manage it), its applications and
keys, denying a token, disable / enable, and the links from the Data tab and a metric's
page. One journey goes on to the public data call a host makes with the registered key."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from products.definitions.services.metrics import metric_create
from sharing.embeds.host import embed_token_sign, key_pair
from sharing.embeds.services.apps import embed_app_create
from sharing.embeds.services.embeds import embed_create
from sharing.models import Embed, EmbedApp, EmbedDeniedToken, EmbedKey, EmbedViewDay
from tests.factories import DomainFactory, MembershipFactory, UserFactory
from tests.sharing.readers import NARROW_FILTER, grant

ORIGIN = "https://shop.example.com"


def page_text(response) -> str:
    """The HTML, entities decoded (attributes and snippets as written)."""
    return html.unescape(response.content.decode())


BLOCK_TAGS = re.compile(r"</?(?:br|p|div|li|dd|dt|th|td|tr|h[1-6]|section|table)\b[^>]*>")


def words(response) -> str:
    """What a reader sees: the text without tags, whitespace collapsed."""
    text = BLOCK_TAGS.sub(" ", response.content.decode())
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return " ".join(text.split())


def list_url(product) -> str:
    return reverse("sharing:product-embeds", args=[product.domain.slug, product.slug])


def new_url(product) -> str:
    return reverse("sharing:embed-create", args=[product.domain.slug, product.slug])


def detail_url(embed) -> str:
    return reverse("sharing:embed-detail", args=[embed.pk])


def action_url(embed, name: str) -> str:
    return reverse(f"sharing:embed-{name}", args=[embed.pk])


def form_data(**fields) -> dict:
    data = {
        "title": "Orders by country",
        "chart": "table",
        "source": "port:orders",
        "columns": "country, amount",
        "locked_params": "tenant = country",
        "allowed_origins": f"{ORIGIN}\nhttps://admin.example.com:8443/",
        "cache_seconds": "30",
        "row_cap": "100",
    }
    data.update(fields)
    return {name: value for name, value in data.items() if value is not None}


@pytest.fixture
def revenue(pg_product, owner):
    return metric_create(
        by=owner,
        port=pg_product.ports.get(),
        key="sales.revenue",
        name="Revenue",
        aggregation="sum",
        column="amount",
        dimensions=["country"],
    )


@pytest.fixture
def orders_embed(pg_product, owner) -> Embed:
    return embed_create(
        by=owner,
        product=pg_product,
        title="Orders by country",
        chart="table",
        port_slug="orders",
        columns=["country", "amount"],
        locked_params={"tenant": "country"},
        allowed_origins=[ORIGIN],
    )


@pytest.fixture
def sharer(pg_product):
    """Not in the domain: a shareable grant, narrowed to Belgian rows (email masked)."""
    user = UserFactory(username="sharer")
    grant(pg_product, user, shareable=True, row_filter=NARROW_FILTER)
    return user


@pytest.fixture
def reader(pg_product):
    """A grant of every column, not shareable."""
    user = UserFactory(username="reader")
    grant(pg_product, user)
    return user


# --- creating an embed ---------------------------------------------------------------


def test_the_owner_creates_an_embed_of_port_rows_through_the_form(client, pg_product, owner):
    client.force_login(owner)
    form = client.get(new_url(pg_product) + "?port=orders")
    assert form.status_code == 200
    assert 'value="port:orders" selected' in form.content.decode()

    response = client.post(new_url(pg_product), form_data())

    embed = Embed.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(embed) + "#apps"
    assert embed.port.slug == "orders" and embed.metric is None
    assert embed.columns == ["country", "amount"]
    assert embed.locked_params == {"tenant": "country"}
    assert embed.allowed_origins == [ORIGIN, "https://admin.example.com:8443"]
    assert (embed.cache_seconds, embed.row_cap, embed.allow_csv) == (30, 100, False)
    assert embed.created_by == owner

    detail = client.get(response["Location"])
    page, text = page_text(detail), words(detail)
    assert "Orders by country Active" in text
    embed_page = f"{settings.PORTAL_SITE_URL}/embed/{embed.pk}/"
    assert f'<script src="{settings.PORTAL_SITE_URL}/static/js/embed-loader.js"' in page
    assert f'data-embed="{embed_page}" data-token="TOKEN"' in page
    assert f'<iframe src="{embed_page}#token=TOKEN"' in page
    assert f'"aud": "{settings.EMBED_TOKEN_AUDIENCE}"' in page
    assert f'"embed": "{embed.pk}"' in page and '"tenant": "<country of the viewer>"' in page
    assert "exp: at most 10 minutes after iat" in text
    assert "tenant: only rows whose country equals the token's tenant" in text
    assert "No application may sign tokens for this embed yet" in text


def test_an_embed_of_a_metric_preselected_from_its_page(client, pg_product, owner, revenue):
    client.force_login(owner)
    metric_page = page_text(client.get(revenue.get_absolute_url()))
    link = new_url(pg_product) + "?metric=sales.revenue"
    assert f'href="{link}">Embed this metric' in metric_page

    form = client.get(link).content.decode()
    assert 'value="metric:sales.revenue" selected' in form
    assert re.search(r'value="kpi"[^>]*checked', form)  # no time column: a KPI tile

    response = client.post(
        new_url(pg_product),
        form_data(
            title="Revenue by country",
            chart="bar",
            source="metric:sales.revenue",
            dimension="country",
            columns="",
        ),
    )
    assert response.status_code == 302, page_text(response)
    embed = Embed.objects.get()
    assert (embed.metric, embed.dimension, embed.columns) == (revenue, "country", [])
    assert "Bar chart of the metric Revenue (sales.revenue) by country" in words(
        client.get(detail_url(embed))
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"allowed_origins": "ftp://shop.example.com"}, "is not an origin"),
        ({"allowed_origins": ""}, "Name at least one origin"),
        ({"columns": "country, nope"}, "Unknown column(s): nope."),
        ({"chart": "kpi"}, "A KPI tile shows a metric's value: choose a metric."),
        ({"chart": "bar", "columns": "amount, country"}, "The y column(s) must be numbers"),
        ({"locked_params": "tenant customer_id"}, "Line 1: write the parameter, = and its"),
        ({"locked_params": "tenant = customer_id"}, "which is not a column of the port"),
        ({"locked_params": "Tenant = country"}, "a parameter's name is lower-case letters"),
        ({"row_cap": "0"}, "Give a number from 1 to 5,000."),
        ({"title": ""}, "This field is required."),
    ],
)
def test_the_form_says_what_is_wrong_and_saves_nothing(client, pg_product, owner, fields, message):
    client.force_login(owner)
    response = client.post(new_url(pg_product), form_data(**fields))
    assert response.status_code == 400
    assert message in words(response)
    assert 'class="field-error"' in response.content.decode()  # beside its field
    assert not Embed.objects.exists()


def test_a_kpi_tile_of_a_metric_with_a_dimension_is_refused_beside_it(
    client, pg_product, owner, revenue
):
    client.force_login(owner)
    response = client.post(
        new_url(pg_product),
        form_data(chart="kpi", source="metric:sales.revenue", dimension="country"),
    )
    assert response.status_code == 400
    assert "A KPI tile shows one value: choose no dimension." in words(response)
    assert not Embed.objects.exists()


def test_a_narrowed_grantee_cannot_embed_a_column_their_access_masks(client, pg_product, sharer):
    client.force_login(sharer)
    form = words(client.get(new_url(pg_product)))
    assert "Masked for you, so an embed cannot show or filter on them: email" in form

    response = client.post(new_url(pg_product), form_data(columns="country, email"))
    assert response.status_code == 403
    assert "Your access masks email: an embed cannot show or filter on it." in words(response)
    response = client.post(new_url(pg_product), form_data(locked_params="who = email"))
    assert response.status_code == 403
    assert not Embed.objects.exists()

    # Within their access, they may.
    response = client.post(new_url(pg_product), form_data())
    assert response.status_code == 302
    assert Embed.objects.get().created_by == sharer


def test_someone_who_may_not_share_sees_why_instead_of_a_form(client, pg_product, reader):
    client.force_login(reader)
    listing = client.get(list_url(pg_product))
    assert "You may not share this product's data" in words(listing)
    assert new_url(pg_product) not in page_text(listing)

    for response in (
        client.get(new_url(pg_product)),
        client.post(new_url(pg_product), form_data()),
    ):
        text = page_text(response)
        assert response.status_code == 403
        assert "You cannot embed this product" in text
        assert "holders of a grant marked shareable" in text
        assert 'name="title"' not in text
    assert not Embed.objects.exists()

    data_tab = page_text(
        client.get(reverse("sharing:product-data", args=["sales", pg_product.slug]))
    )
    assert new_url(pg_product) not in data_tab


def test_the_data_tab_offers_embed_to_who_may_share(client, pg_product, owner):
    client.force_login(owner)
    data_tab = page_text(
        client.get(reverse("sharing:product-data", args=["sales", pg_product.slug]))
    )
    assert f'href="{new_url(pg_product)}?port=orders"' in data_tab


def test_the_metric_page_offers_no_embed_to_who_may_not_share(client, pg_product, revenue, reader):
    client.force_login(reader)
    page = client.get(revenue.get_absolute_url())
    assert page.status_code == 200
    assert "Embed this metric" not in words(page)


# --- a product's embeds --------------------------------------------------------------


def test_the_list_shows_what_each_embed_does_and_its_recent_views(
    client, pg_product, owner, orders_embed, django_assert_max_num_queries
):
    today = timezone.now().date()
    EmbedViewDay.objects.create(embed=orders_embed, day=today, tenant="tenant=BE", views=7)
    EmbedViewDay.objects.create(
        embed=orders_embed, day=today - timedelta(days=3), tenant="tenant=NL", views=5, downloads=2
    )
    EmbedViewDay.objects.create(  # older than 30 days: not counted
        embed=orders_embed, day=today - timedelta(days=40), tenant="tenant=BE", views=100
    )
    for n in range(3):
        embed_create(
            by=owner,
            product=pg_product,
            title=f"Extra {n}",
            chart="table",
            port_slug="orders",
            columns=["country"],
            allowed_origins=[ORIGIN],
        )
    embed_disable_ = action_url(orders_embed, "disable")
    client.force_login(owner)
    client.post(embed_disable_)

    with django_assert_max_num_queries(18):  # 15 today, whatever the number of embeds
        response = client.get(list_url(pg_product))
    assert response.status_code == 200
    text = words(response)
    row = text[text.index("Orders by country") :]
    assert "country, amount of the port" in row
    assert "tenant → country" in row and ORIGIN in row
    assert "Disabled" in row
    assert "12 2 CSV" in row  # 7 + 5 views, 2 downloads; not the 100 of 40 days ago
    assert text.count("Extra ") == 3


def test_others_see_only_the_embeds_they_created(client, pg_product, orders_embed, sharer):
    mine = embed_create(
        by=sharer,
        product=pg_product,
        title="Belgian orders",
        chart="table",
        port_slug="orders",
        columns=["country"],
        allowed_origins=[ORIGIN],
    )
    client.force_login(sharer)
    response = client.get(list_url(pg_product))
    text = words(response)
    assert "Belgian orders" in text and detail_url(mine) in page_text(response)
    assert "Orders by country" not in text
    assert "You see the embeds you created" in text


def test_the_empty_state_says_what_an_embed_is_and_how_to_make_one(client, pg_product, owner):
    client.force_login(owner)
    response = client.get(list_url(pg_product))
    assert "An embed puts a chart, a KPI tile or a small table" in words(response)
    assert "No embeds yet. Create one" in words(response)
    assert f'href="{new_url(pg_product)}"' in page_text(response)


# --- an embed's page: who may open it ------------------------------------------------


def test_whoever_may_not_manage_an_embed_gets_the_404_of_a_missing_one(
    client, pg_product, orders_embed, outsider, sharer
):
    other_domain_steward = UserFactory(username="marketing")
    MembershipFactory(
        domain=DomainFactory(name="Marketing", slug="marketing"),
        user=other_domain_steward,
        role="steward",
    )
    missing = Embed(pk=uuid.uuid4())
    for user in (outsider, sharer, other_domain_steward):
        client.force_login(user)
        for url in (detail_url(orders_embed), detail_url(missing)):
            assert client.get(url).status_code == 404
        for name in ("disable", "token-deny", "app-create", "key-remove"):
            hidden = client.post(action_url(orders_embed, name), {"key": "1"})
            absent = client.post(action_url(missing, name), {"key": "1"})
            assert hidden.status_code == absent.status_code == 404, name
    orders_embed.refresh_from_db()
    assert orders_embed.is_active
    assert not EmbedApp.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(client, pg_product, orders_embed):
    for url in (list_url(pg_product), new_url(pg_product), detail_url(orders_embed)):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    response = client.post(action_url(orders_embed, "disable"))
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert Embed.objects.get().is_active


def test_a_steward_of_the_domain_manages_an_embed_someone_else_created(
    client, orders_embed, steward
):
    client.force_login(steward)
    assert client.get(detail_url(orders_embed)).status_code == 200


# --- applications and keys -----------------------------------------------------------


def test_register_an_app_add_and_remove_keys_remove_the_app(client, orders_embed, owner):
    client.force_login(owner)
    _, public = key_pair("EdDSA")
    response = client.post(
        action_url(orders_embed, "app-create"),
        {
            "app-name": "Customer portal",
            "app-scope": "embed",
            "app-kid": "shop-1",
            "app-algorithm": "EdDSA",
            "app-public_key": public,
        },
    )
    assert response.status_code == 302
    app = EmbedApp.objects.get()
    assert (app.name, app.embed, app.domain) == ("Customer portal", orders_embed, None)
    assert list(app.keys.values_list("kid", "algorithm")) == [("shop-1", "EdDSA")]

    # A second key (rotation), RSA this time; first a mistake or two.
    _, rsa_public = key_pair("RS256")
    prefix = f"key-{app.pk}"
    bad = client.post(
        action_url(orders_embed, "key-add"),
        {
            "app": app.pk,
            f"{prefix}-kid": "shop-2",
            f"{prefix}-algorithm": "EdDSA",
            f"{prefix}-public_key": rsa_public,
        },
    )
    assert bad.status_code == 400
    assert "This is not an Ed25519 public key." in page_text(bad)
    taken = client.post(
        action_url(orders_embed, "key-add"),
        {
            "app": app.pk,
            f"{prefix}-kid": "shop-1",
            f"{prefix}-algorithm": "RS256",
            f"{prefix}-public_key": rsa_public,
        },
    )
    assert taken.status_code == 400
    assert "A key 'shop-1' is registered already" in page_text(taken)
    added = client.post(
        action_url(orders_embed, "key-add"),
        {
            "app": app.pk,
            f"{prefix}-kid": "shop-2",
            f"{prefix}-algorithm": "RS256",
            f"{prefix}-public_key": rsa_public,
        },
    )
    assert added.status_code == 302
    assert sorted(app.keys.values_list("kid", flat=True)) == ["shop-1", "shop-2"]
    page = page_text(client.get(detail_url(orders_embed)))
    assert "shop-2" in page and "RSA (RS256)" in page and "Ed25519 (EdDSA)" in page

    old = EmbedKey.objects.get(kid="shop-1")
    response = client.post(action_url(orders_embed, "key-remove"), {"key": old.pk})
    assert response.status_code == 302
    assert list(app.keys.values_list("kid", flat=True)) == ["shop-2"]

    response = client.post(action_url(orders_embed, "app-delete"), {"app": app.pk})
    assert response.status_code == 302
    assert not EmbedApp.objects.exists() and not EmbedKey.objects.exists()


def test_registering_an_app_with_a_bad_key_says_so_and_saves_nothing(client, orders_embed, owner):
    client.force_login(owner)
    response = client.post(
        action_url(orders_embed, "app-create"),
        {
            "app-name": "Customer portal",
            "app-kid": "shop-1",
            "app-algorithm": "EdDSA",
            "app-public_key": "not a key",
        },
    )
    assert response.status_code == 400
    assert "Paste a public key in PEM form (-----BEGIN PUBLIC KEY-----...)." in words(response)
    assert '<details class="embed-app-add" open>' in response.content.decode()
    assert not EmbedApp.objects.exists()


def test_domain_applications_are_shown_to_an_embeds_creator_but_managed_by_the_domain(
    client, pg_product, owner, sharer
):
    embed = embed_create(
        by=sharer,
        product=pg_product,
        title="Belgian orders",
        chart="table",
        port_slug="orders",
        columns=["country"],
        allowed_origins=[ORIGIN],
    )
    _, public = key_pair("EdDSA")
    client.force_login(owner)
    form = words(client.get(detail_url(embed)))
    assert "Every embed of the Sales domain's products" in form
    response = client.post(
        action_url(embed, "app-create"),
        {
            "app-name": "Sales extranet",
            "app-scope": "domain",
            "app-kid": "extranet-1",
            "app-algorithm": "EdDSA",
            "app-public_key": public,
        },
    )
    assert response.status_code == 302
    domain_app = EmbedApp.objects.get()
    assert (domain_app.domain, domain_app.embed) == (pg_product.domain, None)

    client.force_login(sharer)
    page = words(client.get(detail_url(embed)))
    assert "Sales extranet" in page and "extranet-1" in page
    assert "Managed by the Sales domain's owners and stewards" in page
    assert "Every embed of the Sales domain's products" not in page  # no domain scope
    response = client.post(action_url(embed, "app-delete"), {"app": domain_app.pk}, follow=True)
    assert "Only the application's managers remove it." in words(response)
    key = domain_app.keys.get()
    client.post(action_url(embed, "key-remove"), {"key": key.pk})
    assert EmbedKey.objects.filter(pk=key.pk).exists()

    # Asking for a domain scope without managing the domain registers for the embed only.
    _, other = key_pair("EdDSA")
    client.post(
        action_url(embed, "app-create"),
        {
            "app-name": "My app",
            "app-scope": "domain",
            "app-kid": "mine-1",
            "app-algorithm": "EdDSA",
            "app-public_key": other,
        },
    )
    mine = EmbedApp.objects.get(name="My app")
    assert (mine.embed, mine.domain) == (embed, None)


def test_an_app_of_another_embed_or_domain_is_not_found_here(
    client, pg_product, owner, orders_embed
):
    other = embed_create(
        by=owner,
        product=pg_product,
        title="Other",
        chart="table",
        port_slug="orders",
        columns=["country"],
        allowed_origins=[ORIGIN],
    )
    _, public = key_pair("EdDSA")
    app = embed_app_create(
        by=owner, name="Other app", embed=other, kid="other-1", algorithm="EdDSA", public_key=public
    )
    client.force_login(owner)
    assert client.post(action_url(orders_embed, "app-delete"), {"app": app.pk}).status_code == 404
    key = app.keys.get()
    assert client.post(action_url(orders_embed, "key-remove"), {"key": key.pk}).status_code == 404
    assert EmbedKey.objects.filter(pk=key.pk).exists()


# --- tokens, disabling, views ------------------------------------------------------


def test_deny_a_token_by_its_jti(client, orders_embed, owner):
    client.force_login(owner)
    empty = client.post(action_url(orders_embed, "token-deny"), {"deny-jti": ""})
    assert empty.status_code == 400
    assert "This field is required." in words(empty)

    response = client.post(action_url(orders_embed, "token-deny"), {"deny-jti": "leaked-42"})
    assert response.status_code == 302
    denied = EmbedDeniedToken.objects.get()
    assert (denied.embed, denied.jti, denied.denied_by) == (orders_embed, "leaked-42", owner)
    page = words(client.get(detail_url(orders_embed)))
    assert "Denied tokens" in page and "leaked-42" in page


def test_disable_and_enable(client, orders_embed, owner):
    client.force_login(owner)
    response = client.post(action_url(orders_embed, "disable"), follow=True)
    orders_embed.refresh_from_db()
    assert not orders_embed.is_active and orders_embed.disabled_by == owner
    assert "host pages show nothing" in words(response)
    assert action_url(orders_embed, "enable") in page_text(response)
    assert client.get(reverse("sharing:embed", args=[orders_embed.pk])).status_code == 404

    client.post(action_url(orders_embed, "enable"))
    orders_embed.refresh_from_db()
    assert orders_embed.is_active
    assert client.get(reverse("sharing:embed", args=[orders_embed.pk])).status_code == 200


def test_views_per_tenant_over_the_last_30_days(client, orders_embed, owner):
    client.force_login(owner)
    assert "No views yet." in words(client.get(detail_url(orders_embed)))
    today = timezone.now().date()
    for days, tenant, views in ((0, "tenant=BE", 4), (1, "tenant=BE", 3), (2, "tenant=NL", 2)):
        EmbedViewDay.objects.create(
            embed=orders_embed, day=today - timedelta(days=days), tenant=tenant, views=views
        )
    EmbedViewDay.objects.create(
        embed=orders_embed, day=today - timedelta(days=31), tenant="tenant=FR", views=50
    )
    response = client.get(detail_url(orders_embed))
    text = words(response)
    assert "Views in the last 30 days (9)" in text
    assert "tenant=BE 7 0" in text and "tenant=NL 2 0" in text
    assert "tenant=FR" not in text
    assert "data-plotly-figure" in page_text(response) and "js/charts.js" in page_text(response)


# --- the whole way: form, key, token, the host's data call ------------------------


def test_an_embed_made_through_the_pages_serves_its_host(client, pg_product, owner):
    client.force_login(owner)
    client.post(new_url(pg_product), form_data())
    embed = Embed.objects.get()
    private, public = key_pair("EdDSA")
    client.post(
        action_url(embed, "app-create"),
        {
            "app-name": "Customer portal",
            "app-scope": "embed",
            "app-kid": "shop-1",
            "app-algorithm": "EdDSA",
            "app-public_key": public,
        },
    )
    token = embed_token_sign(
        private_key=private, kid="shop-1", embed_id=embed.pk, params={"tenant": "BE"}, jti="t-1"
    )
    client.logout()
    data_url = reverse("sharing:embed-data", args=[embed.pk])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_X_EMBED_ORIGIN": ORIGIN}
    answer = client.get(data_url, **headers)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["columns"] == ["country", "amount"]
    assert sorted(body["rows"]) == [["BE", 10.0], ["BE", 30.0]]  # the tenant's rows only

    # Denied through the page: the same token is refused at once.
    client.force_login(owner)
    client.post(action_url(embed, "token-deny"), {"deny-jti": "t-1"})
    client.logout()
    refused = client.get(data_url, **headers)
    assert refused.status_code == 401
    assert "denied" in refused.json()["detail"]


def test_how_embeds_work_is_docs_embeds_md_as_a_page(client, outsider):
    client.force_login(outsider)
    response = client.get(reverse("sharing:embed-docs"))
    assert response.status_code == 200
    text = words(response)
    assert "Embedded analytics" in text and "Host applications and keys" in text
