"""The demo's embed: seeding creates Sales' revenue embed locked to a country, its host
application "Demo host" with the public key of a private key kept in a file (never in the
database), and seeding again changes none of them. The sample host page (what
`manage.py embed_demo_host` serves, here in a thread on a free port) signs a token per load
that the portal accepts for the chosen country only, from the page's origin.
Transactional: the seeding's reads go through the warehouse's own connections."""

import re
import stat
import threading
import time
import urllib.error
import urllib.request
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from products.definitions.services.metrics import metric_evaluate
from products.demo.embed_host import host_server
from products.demo.embeds import demo_embed_origins_set, demo_host, host_origins, key_path
from sharing.choices import Channel
from sharing.embeds.tokens import token_verify
from sharing.models import Embed, EmbedApp, EmbedKey

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("demo_settings")]

PORTAL = "http://127.0.0.1:8000"


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", "--rows-scale", "0.05", stdout=out)
    return out.getvalue()


def embed_state() -> tuple:
    return (
        list(Embed.objects.values_list("pk", "title", "allowed_origins", "updated_at")),
        list(EmbedApp.objects.values_list("pk", "name", "embed_id")),
        list(EmbedKey.objects.values_list("kid", "public_key")),
        key_path().read_text(),
    )


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_demo_embed_shows_on_its_host_page_for_one_tenant(monkeypatch):
    monkeypatch.setenv("PORT", "8000")
    monkeypatch.delenv("EMBED_DEMO_HOST_PORT", raising=False)
    seed()
    embed = Embed.objects.select_related("metric", "created_by").get()
    assert (embed.metric.key, embed.chart, embed.grain) == ("sales.revenue", "line", "month")
    assert embed.locked_params == {"tenant": "country"}
    assert embed.created_by.username == "owner"
    assert embed.allowed_origins == ["http://127.0.0.1:8001", "http://localhost:8001"]
    app = EmbedApp.objects.get()
    assert (app.name, app.embed_id, app.domain_id) == ("Demo host", embed.pk, None)
    key = app.keys.get()
    # The private key is a file only its owner reads; the database holds the public key.
    private = key_path()
    assert "BEGIN PRIVATE KEY" in private.read_text()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert key.algorithm == "EdDSA" and "BEGIN PUBLIC KEY" in key.public_key
    assert "PRIVATE" not in key.public_key

    before = embed_state()
    created = next(line for line in seed().splitlines() if "created:" in line)
    assert "embed" not in created, created
    assert embed_state() == before

    host = demo_host()
    server = host_server(host=host, portal_url=PORTAL, port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        # As the command does at start: the page's own origin, whatever its port.
        assert demo_embed_origins_set(port=port)
        signed_at = time.time()
        status, page = get(f"http://127.0.0.1:{port}/?tenant=DE")
        wrong_status, _ = get(f"http://127.0.0.1:{port}/?tenant=XX")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert status == 200, page
    assert wrong_status == 404
    embed.refresh_from_db()
    assert embed.allowed_origins == host_origins(port)

    # Twice: the one-line snippet, and a plain iframe of the portal's embed page.
    (snippet_token,) = re.findall(
        r'<script src="[^"]*" data-embed="[^"]*" data-token="([^"]+)"', page
    )
    assert f'data-embed="{PORTAL}/embed/{embed.pk}/"' in page
    assert f'src="{PORTAL}/static/js/embed-loader.js"' in page
    (iframe_token,) = re.findall(rf'<iframe src="{PORTAL}/embed/{embed.pk}/#token=([^"]+)"', page)
    assert snippet_token == iframe_token
    verified = token_verify(iframe_token, embed)
    assert verified.params == {"tenant": "DE"}
    assert signed_at + 290 <= verified.expires_at <= time.time() + 300

    # The portal answers the page's origin with Germany's monthly revenue only.
    response = Client().get(
        f"/embed/{embed.pk}/data/",
        HTTP_AUTHORIZATION=f"Bearer {iframe_token}",
        HTTP_X_EMBED_ORIGIN=f"http://127.0.0.1:{port}",
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    germany = metric_evaluate(
        metric=embed.metric,
        user=get_user_model().objects.get(username="owner"),
        channel=Channel.WEB,
        grain="month",
        filters=[{"column": "country", "op": "=", "value": "DE"}],
    )
    total = sum(row["value"] for row in germany.rows)
    values = [row[response.json()["columns"].index("value")] for row in response.json()["rows"]]
    assert len(values) >= 12 and sum(values) == pytest.approx(float(total))
    everyone = metric_evaluate(
        metric=embed.metric,
        user=get_user_model().objects.get(username="owner"),
        channel=Channel.WEB,
    )
    assert total < everyone.rows[0]["value"]
