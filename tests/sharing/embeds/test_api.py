"""The embed API: embeds and host applications, each refusal a 4xx naming what to fix."""

from __future__ import annotations

import pytest

from products.models import Metric
from sharing.embeds.host import key_pair
from sharing.models import Embed, EmbedApp, EmbedDeniedToken, EmbedKey
from tests.factories import UserFactory
from tests.sharing.embeds.conftest import HOST
from tests.sharing.readers import grant

pytestmark = pytest.mark.django_db

EMBEDS = "/api/v1/embeds/"
APPS = "/api/v1/embed-apps/"


def _body(**fields) -> dict:
    return {
        "product": "sales.pg-orders",
        "title": "Orders",
        "chart": "line",
        "columns": ["order_id", "amount"],
        "locked_params": {"tenant": "country"},
        "allowed_origins": [HOST, "http://localhost:8001"],
        **fields,
    }


def test_create_list_show_disable_enable(pg_product, owner, outsider, client_as):
    api = client_as(owner)
    created = api.post(EMBEDS, _body(), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["allowed_origins"] == [HOST, "http://localhost:8001"]
    assert body["page_url"].endswith(f"/embed/{body['id']}/")
    assert body["data_url"].endswith(f"/embed/{body['id']}/data/")
    assert body["active"] is True and body["created_by"] == "owner"
    assert [e["id"] for e in api.get(EMBEDS).json()["results"]] == [body["id"]]
    url = f"{EMBEDS}{body['id']}/"
    assert api.post(f"{url}disable/").json()["active"] is False
    assert api.post(f"{url}enable/").json()["active"] is True
    assert api.delete(url).status_code == 204
    assert Embed.objects.get(pk=body["id"]).disabled_at is not None
    # Someone who does not manage it: not listed, and 404 as if it did not exist.
    other = client_as(outsider)
    assert other.get(EMBEDS).json()["results"] == []
    assert other.get(url).status_code == 404
    assert other.post(f"{url}disable/").status_code == 404
    assert other.get(f"{EMBEDS}not-a-uuid/").status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"allowed_origins": ["shop.example.com"]}, "allowed_origins"),
        ({"allowed_origins": ["https://shop.example.com/path"]}, "allowed_origins"),
        ({"allowed_origins": []}, "allowed_origins"),
        # Origins go into the page's Content-Security-Policy: no directive smuggled in.
        ({"allowed_origins": ["https://x; script-src *"]}, "allowed_origins"),
        ({"allowed_origins": ["https://a;b.com"]}, "allowed_origins"),
        ({"columns": ["order_id", "nope"]}, "columns"),
        ({"columns": ["order_id", "country"]}, "columns"),  # a y column of text
        ({"chart": "kpi"}, "metric"),  # a KPI tile over a port
        ({"chart": "pie"}, "chart"),
        ({"locked_params": {"Tenant!": "country"}}, "locked_params"),
        ({"locked_params": {"tenant": "nope"}}, "locked_params"),
        ({"cache_seconds": 99999}, "cache_seconds"),
        ({"row_cap": 0}, "row_cap"),
        ({"title": " "}, "title"),
        ({"product": "sales.nope"}, "product"),
        ({"metric": "sales.nope"}, "metric"),
        ({"port": "nope"}, "port"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(pg_product, owner, client_as, fields, field):
    response = client_as(owner).post(EMBEDS, _body(**fields), format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json(), response.json()
    assert not Embed.objects.exists()


def test_who_may_embed(pg_product, outsider, client_as):
    assert client_as(outsider).post(EMBEDS, _body(), format="json").status_code == 403
    reader = UserFactory(username="reader")
    grant(pg_product, reader)
    refused = client_as(reader).post(EMBEDS, _body(), format="json")
    assert refused.status_code == 403 and not Embed.objects.exists()
    assert client_as(None).post(EMBEDS, _body(), format="json").status_code in (401, 403)


def test_a_metric_embed(pg_product, owner, client_as):
    Metric.objects.create(
        key="sales.order-amount",
        name="Order amount",
        port=pg_product.ports.get(),
        aggregation="sum",
        column="amount",
        dimensions=["country"],
    )
    api = client_as(owner)
    body = _body(chart="bar", metric="sales.order-amount", dimension="country", columns=[])
    body["locked_params"] = {}
    created = api.post(EMBEDS, body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["metric"] == "sales.order-amount"
    grain = api.post(EMBEDS, {**body, "dimension": "", "grain": "day"}, format="json")
    assert grain.status_code == 400 and "grain" in grain.json()  # no time column


def test_applications_and_their_keys(pg_product, owner, steward, outsider, client_as):
    api = client_as(owner)
    embed_id = api.post(EMBEDS, _body(), format="json").json()["id"]
    _, public = key_pair("EdDSA")
    created = api.post(
        APPS,
        {
            "name": "Shop",
            "embed": embed_id,
            "kid": "k1",
            "algorithm": "EdDSA",
            "public_key": public,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    app = created.json()
    assert app["embed"] == embed_id and [k["kid"] for k in app["keys"]] == ["k1"]
    _, rsa_public = key_pair("RS256")
    added = api.post(
        f"{APPS}{app['id']}/keys/",
        {"kid": "k2", "algorithm": "RS256", "public_key": rsa_public},
        format="json",
    )
    assert added.status_code == 201
    duplicate = api.post(
        f"{APPS}{app['id']}/keys/",
        {"kid": "k2", "algorithm": "RS256", "public_key": rsa_public},
        format="json",
    )
    assert duplicate.status_code == 400 and "kid" in duplicate.json()
    wrong_kind = api.post(
        f"{APPS}{app['id']}/keys/",
        {"kid": "k3", "algorithm": "EdDSA", "public_key": rsa_public},
        format="json",
    )
    assert wrong_kind.status_code == 400 and "public_key" in wrong_kind.json()
    garbage = api.post(
        f"{APPS}{app['id']}/keys/",
        {"kid": "k4", "algorithm": "EdDSA", "public_key": "hello"},
        format="json",
    )
    assert garbage.status_code == 400 and "public_key" in garbage.json()
    assert api.delete(f"{APPS}{app['id']}/keys/k1/").status_code == 204
    assert api.delete(f"{APPS}{app['id']}/keys/k1/").status_code == 404
    assert set(EmbedKey.objects.values_list("kid", flat=True)) == {"k2"}
    # A domain-wide application: the domain's owners and stewards, nobody else.
    domain_app = {"name": "Everywhere", "domain": "sales", "kid": "d1", "algorithm": "EdDSA"}
    domain_app["public_key"] = public
    assert client_as(outsider).post(APPS, domain_app, format="json").status_code == 403
    assert client_as(steward).post(APPS, domain_app, format="json").status_code == 201
    both = {**domain_app, "kid": "d2", "embed": embed_id}
    assert client_as(owner).post(APPS, both, format="json").status_code == 400
    assert client_as(outsider).get(f"{APPS}{app['id']}/").status_code == 404
    api = client_as(owner)  # one client: signed in as the owner again
    listed = api.get(APPS).json()
    assert {a["name"] for a in listed["results"]} == {"Shop", "Everywhere"}, listed
    assert api.delete(f"{APPS}{app['id']}/").status_code == 204
    assert list(EmbedApp.objects.values_list("name", flat=True)) == ["Everywhere"]


def test_deny_a_token(pg_product, owner, client_as):
    api = client_as(owner)
    embed_id = api.post(EMBEDS, _body(), format="json").json()["id"]
    url = f"{EMBEDS}{embed_id}/deny-token/"
    assert api.post(url, {"jti": "abc"}, format="json").status_code == 204
    assert api.post(url, {"jti": "abc"}, format="json").status_code == 204  # idempotent
    assert api.post(url, {"jti": ""}, format="json").status_code == 400
    assert list(EmbedDeniedToken.objects.values_list("jti", flat=True)) == ["abc"]
