"""An embed's data calls: tokens, origins, locked parameters as row filters, the creator's
access decided at every call, the cache and what invalidates it, trust notices, CSV, views."""

from __future__ import annotations

import time
from datetime import UTC, timedelta

import jwt
import pytest
from django.utils import timezone

from portal.core.events import event_emit
from products.choices import CheckOutcome, CheckRunStatus, IncidentCause, Severity
from products.models import Check, CheckResult, CheckRun, Incident, Metric, PortObservation
from sharing.access.services.grants import grant_revoke
from sharing.embeds.host import key_pair
from sharing.embeds.services.apps import embed_app_create, embed_key_remove
from sharing.embeds.services.embeds import embed_create, embed_disable, embed_token_deny
from sharing.models import AccessEvent, EmbedKey, EmbedViewDay
from tests.factories import UserFactory
from tests.sharing.embeds.conftest import HOST
from tests.sharing.readers import grant

pytestmark = pytest.mark.django_db


def _rows(response) -> list:
    assert response.status_code == 200, response.content
    return response.json()["rows"]


def test_each_tenant_sees_only_its_own_rows(table_embed, sign, call):
    be = _rows(call(table_embed, sign(table_embed, {"tenant": "BE"})))
    nl = _rows(call(table_embed, sign(table_embed, {"tenant": "NL"})))
    assert sorted(be) == [[1, 10.0], [3, 30.0]]
    assert nl == [[2, 20.0]]
    assert _rows(call(table_embed, sign(table_embed, {"tenant": "XX"}))) == []
    # An injection attempt is a value like any other.
    assert _rows(call(table_embed, sign(table_embed, {"tenant": "BE' OR '1'='1"}))) == []
    body = call(table_embed, sign(table_embed)).json()
    assert body["columns"] == ["order_id", "amount"]
    assert body["embed"]["chart"] == "table" and body["embed"]["csv"] is True


@pytest.mark.parametrize(
    "problem",
    [
        "expired",
        "tampered",
        "audience",
        "other_embed",
        "too_long",
        "unknown_kid",
        "no_kid",
        "none_alg",
        "hs256_with_public_key",
        "missing_param",
        "extra_param",
        "object_param",
        "no_jti",
        "not_a_jwt",
        "no_token",
    ],
)
def test_a_bad_token_gets_401_on_data_and_csv(problem, table_embed, sign, call, ed_keys):
    now = time.time()
    token = {
        "expired": lambda: sign(table_embed, now=now - 700, seconds=600),
        "tampered": lambda: _tampered(sign(table_embed)),
        "audience": lambda: sign(table_embed, audience="another-portal"),
        "other_embed": lambda: _for_other_embed(sign),
        "too_long": lambda: sign(table_embed, seconds=3600),
        "unknown_kid": lambda: sign(table_embed, kid="nobody"),
        "no_kid": lambda: jwt.encode(_claims(table_embed), ed_keys[0], algorithm="EdDSA"),
        "none_alg": lambda: jwt.encode(
            _claims(table_embed), None, algorithm="none", headers={"kid": "shop-1"}
        ),
        "hs256_with_public_key": lambda: _hs256(table_embed, ed_keys[1]),
        "missing_param": lambda: sign(table_embed, {}),
        "extra_param": lambda: sign(table_embed, {"tenant": "BE", "country": "NL"}),
        "object_param": lambda: sign(table_embed, {"tenant": {"op": "!=", "value": "x"}}),
        "no_jti": lambda: jwt.encode(
            {k: v for k, v in _claims(table_embed).items() if k != "jti"},
            ed_keys[0],
            algorithm="EdDSA",
            headers={"kid": "shop-1"},
        ),
        "not_a_jwt": lambda: "not.a.jwt",
        "no_token": lambda: "",
    }[problem]()
    for fmt in (None, "csv"):
        response = call(table_embed, token, fmt=fmt)
        assert response.status_code == 401, (problem, fmt, response.content)
        assert response.json()["detail"]
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert b"order_id" not in response.content


def _claims(embed) -> dict:
    now = int(time.time())
    return {
        "embed": str(embed.pk),
        "params": {"tenant": "BE"},
        "aud": "data-portal-embed",
        "iat": now,
        "exp": now + 300,
        "jti": "j-1",
    }


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = jwt.utils.base64url_decode(payload).replace(b'"BE"', b'"NL"')
    return ".".join([header, jwt.utils.base64url_encode(claims).decode(), signature])


def _hs256(embed, public_pem: str) -> str:
    # The classic confusion: the public key used as an HMAC secret.
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "kid": "shop-1", "typ": "JWT"}).encode())
    body = b64(json.dumps(_claims(embed)).encode())
    mac = hmac.new(public_pem.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def _for_other_embed(sign) -> str:
    class Other:
        pk = "00000000-0000-4000-8000-000000000001"

    return sign(Other)


def test_origins_are_checked_on_every_call(table_embed, sign, call):
    token = sign(table_embed)
    # The framed page names its parent; another parent, or none, is refused.
    assert call(table_embed, token, parent="https://evil.example.com").status_code == 403
    assert call(table_embed, token, parent=None).status_code == 403
    # A cross-origin caller: its Origin must be allowed, and gets CORS headers.
    allowed = call(table_embed, token, origin=HOST, parent=None)
    assert allowed.status_code == 200 and allowed["Access-Control-Allow-Origin"] == HOST
    refused = call(table_embed, token, origin="https://evil.example.com")
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused
    # An allowed origin written differently by the browser (case, default port).
    assert call(table_embed, token, parent="https://SHOP.example.com:443").status_code == 200


def test_preflight_of_an_allowed_origin(table_embed, client):
    response = client.options(
        f"/embed/{table_embed.pk}/data/",
        HTTP_ORIGIN=HOST,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == HOST
    assert "Authorization" in response["Access-Control-Allow-Headers"]
    other = client.options(f"/embed/{table_embed.pk}/data/", HTTP_ORIGIN="https://evil.test")
    assert other.status_code == 403


def test_disabling_removing_the_key_or_denying_the_jti_stops_the_next_call(
    table_embed, sign, call, owner
):
    token = sign(table_embed, jti="session-42")
    assert call(table_embed, token).status_code == 200
    embed_token_deny(embed=table_embed, jti="session-42", by=owner)
    assert call(table_embed, token).status_code == 401
    assert call(table_embed, sign(table_embed, jti="session-43")).status_code == 200
    embed_key_remove(key=EmbedKey.objects.get(kid="shop-1"), by=owner)
    assert call(table_embed, sign(table_embed, jti="session-44")).status_code == 401
    rsa_private, rsa_public = key_pair("RS256")
    embed_app_create(
        by=owner,
        name="Shop 2",
        embed=table_embed,
        kid="shop-rsa",
        algorithm="RS256",
        public_key=rsa_public,
    )
    rs = sign(table_embed, kid="shop-rsa", private_key=rsa_private, algorithm="RS256")
    assert call(table_embed, rs).status_code == 200
    embed_disable(embed=table_embed, by=owner)
    assert call(table_embed, rs).status_code == 404
    assert call(table_embed, rs, fmt="csv").status_code == 404


def test_a_domain_application_signs_for_every_embed_of_its_domain(
    table_embed, pg_product, owner, sign, call
):
    private, public = key_pair("EdDSA")
    embed_app_create(
        by=owner,
        name="Portal-wide shop",
        domain=pg_product.domain,
        kid="domain-1",
        algorithm="EdDSA",
        public_key=public,
    )
    assert (
        call(table_embed, sign(table_embed, kid="domain-1", private_key=private)).status_code == 200
    )


def test_the_creator_s_access_is_decided_at_every_call(pg_product, owner, sign, call, ed_keys):
    analyst = UserFactory(username="analyst")
    held = grant(pg_product, analyst, shareable=True)
    embed = embed_create(
        by=analyst,
        product=pg_product,
        title="Orders by id",
        chart="bar",
        columns=["order_id", "amount"],
        locked_params={"tenant": "country"},
        allowed_origins=[HOST],
    )
    embed_app_create(
        by=analyst,
        name="App",
        embed=embed,
        kid="analyst-1",
        algorithm="EdDSA",
        public_key=ed_keys[1],
    )
    token = sign(embed, kid="analyst-1")
    assert len(_rows(call(embed, token))) == 2
    # Narrowed to NL rows: the embed shows what its creator may read now (cache or not).
    held.row_filter = [{"column": "country", "op": "=", "value": "NL"}]
    held.save()
    assert _rows(call(embed, token)) == []
    grant_revoke(grant=held, by=owner, reason="left the project")
    refused = call(embed, token)
    assert refused.status_code == 403 and "no longer" in refused.json()["detail"]


def test_a_grantee_embeds_only_with_a_shareable_grant_and_unmasked_columns(pg_product):
    from django.core.exceptions import PermissionDenied

    reader = UserFactory(username="reader")
    held = grant(pg_product, reader)  # not shareable
    fields = dict(
        product=pg_product,
        title="x",
        chart="table",
        columns=["order_id", "email"],
        allowed_origins=[HOST],
    )
    with pytest.raises(PermissionDenied):
        embed_create(by=reader, **fields)
    held.shareable = True
    held.save()
    with pytest.raises(PermissionDenied, match="masks email"):  # confidential: masked
        embed_create(by=reader, **fields)
    with pytest.raises(PermissionDenied, match="masks email"):
        embed_create(
            by=reader, **{**fields, "columns": ["order_id"]}, locked_params={"tenant": "email"}
        )
    assert embed_create(by=reader, **{**fields, "columns": ["order_id", "amount"]})


def test_answers_are_cached_until_the_product_has_news(table_embed, sign, call):
    token = sign(table_embed)
    first = call(table_embed, token)
    assert first["X-Embed-Cache"] == "miss" and first.json()["cached"] is False
    again = call(table_embed, sign(table_embed))
    assert again["X-Embed-Cache"] == "hit" and again.json()["rows"] == first.json()["rows"]
    assert call(table_embed, sign(table_embed, {"tenant": "NL"}))["X-Embed-Cache"] == "miss"
    event_emit("portal.product.version_changed", product=table_embed.product, data={})
    assert call(table_embed, token)["X-Embed-Cache"] == "miss"
    reads = AccessEvent.objects.filter(channel="embed", product=table_embed.product)
    assert reads.count() == 3  # each read of the source, audited; cached answers read nothing
    assert reads.first().detail["embed"] == str(table_embed.pk)


def test_trust_notices_freshness_and_the_last_good_values(table_embed, sign, call, settings):
    table_embed.show_last_good = True
    table_embed.cache_seconds = 0
    table_embed.save()
    newest = timezone.now() - timedelta(hours=3)
    PortObservation.objects.create(
        port=table_embed.port, observed_at=timezone.now(), available=True, newest_at=newest
    )
    good = call(table_embed, sign(table_embed)).json()
    assert good["notices"] == [] and good["last_good"] is None
    assert good["freshness"]["newest_at"] == newest.astimezone(UTC).isoformat()
    # The source changes, then a check fails: the notice, and the last good rows.
    check = Check.objects.create(
        port=table_embed.port,
        name="no nulls",
        kind="not_null",
        column="amount",
        severity=Severity.ERROR,
    )
    run = CheckRun.objects.create(
        port=table_embed.port,
        status=CheckRunStatus.DONE,
        finished_at=timezone.now(),
    )
    CheckResult.objects.create(
        run=run,
        quality_check=check,
        port=table_embed.port,
        outcome=CheckOutcome.FAIL,
        severity=Severity.ERROR,
        evaluated_at=timezone.now(),
    )
    with_notice = call(table_embed, sign(table_embed)).json()
    assert [n["kind"] for n in with_notice["notices"]] == ["check"]
    assert with_notice["last_good"] == good["as_of"] and with_notice["rows"] == good["rows"]
    Incident.objects.create(
        product=table_embed.product,
        cause=IncidentCause.AVAILABILITY,
        cause_key="x",
        title="Warehouse down at 10.0.0.5",
        opened_at=timezone.now(),
    )
    body = call(table_embed, sign(table_embed)).json()
    assert [n["kind"] for n in body["notices"]] == ["incident", "check"]
    assert "10.0.0.5" not in str(body)  # an incident's title is not for outsiders


def test_csv_only_when_allowed_with_formulas_neutralised(table_embed, sign, call, owner):
    response = call(table_embed, sign(table_embed), fmt="csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.content.decode().splitlines() == ["order_id,amount", "1,10.0", "3,30.0"]
    table_embed.allow_csv = False
    table_embed.save()
    refused = call(table_embed, sign(table_embed), fmt="csv")
    assert refused.status_code == 403
    assert call(table_embed, sign(table_embed), fmt="xml").status_code == 400


def test_views_and_downloads_are_counted_per_tenant(table_embed, sign, call):
    for tenant in ("BE", "BE", "NL"):
        call(table_embed, sign(table_embed, {"tenant": tenant}))
    call(table_embed, sign(table_embed, {"tenant": "BE"}), fmt="csv")
    call(table_embed, sign(table_embed, {"tenant": "NL"}), parent="https://evil.test")  # refused
    counted = {
        day.tenant: (day.views, day.downloads)
        for day in EmbedViewDay.objects.filter(embed=table_embed)
    }
    assert counted == {"tenant=BE": (2, 1), "tenant=NL": (1, 0)}


def test_a_metric_kpi_locked_on_a_dimension(pg_product, owner, sign, call, ed_keys):
    metric = Metric.objects.create(
        key="sales.order-amount",
        name="Order amount",
        port=pg_product.ports.get(),
        aggregation="sum",
        column="amount",
        dimensions=["country"],
    )
    embed = embed_create(
        by=owner,
        product=pg_product,
        title="Amount",
        chart="kpi",
        metric=metric,
        locked_params={"tenant": "country"},
        allowed_origins=[HOST],
    )
    embed_app_create(
        by=owner, name="App", embed=embed, kid="kpi-1", algorithm="EdDSA", public_key=ed_keys[1]
    )
    body = call(embed, sign(embed, kid="kpi-1")).json()
    assert body["columns"] == ["value"] and body["rows"] == [[40.0]]
    assert body["embed"]["over"] == "metric"
    assert call(embed, sign(embed, {"tenant": "NL"}, kid="kpi-1")).json()["rows"] == [[20.0]]


def test_the_page_is_framed_only_by_allowed_origins(table_embed, client):
    response = client.get(f"/embed/{table_embed.pk}/")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert f"frame-ancestors {HOST}" in policy
    assert "X-Frame-Options" not in response
    assert b"Your orders" in response.content and b"embed.js" in response.content
    assert b"plotly" not in response.content  # a table draws without plotly
    missing = client.get("/embed/00000000-0000-4000-8000-000000000001/")
    assert missing.status_code == 404
    assert "frame-ancestors" in missing["Content-Security-Policy"]
