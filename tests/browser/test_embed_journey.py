"""An embed inside another application, in a real browser: a host page served from a
second local origin frames `/embed/<id>/#token=...` with a token it signs itself.

The allowed origin renders (a table for tenant BE shows BE's orders only, a chart draws, a
KPI tile shows its value without loading plotly), the CSV button downloads the same rows;
a host on another origin is refused by frame-ancestors; an expired, tampered or
wrong-audience token gets 401 on the data call and on CSV, and the frame says why."""

from __future__ import annotations

import html
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from products.models import Metric
from sharing.embeds.host import embed_token_sign, key_pair
from sharing.embeds.services.apps import embed_app_create
from sharing.embeds.services.embeds import embed_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class Host:
    """A host application on its own origin (127.0.0.1:<port>, the portal is at localhost):
    GET /<embed id>?tenant=BE&problem=... answers a page framing the embed with a token."""

    def __init__(self, portal_url: str, private_key: str):
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                path, _, query = self.path.partition("?")
                params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
                token = host.token(path.strip("/"), params)
                src = f"{portal_url}/embed/{path.strip('/')}/#token={token}"
                body = (
                    "<!doctype html><html lang=en><head><title>Shop</title></head><body>"
                    "<h1>Seller dashboard</h1>"
                    f'<iframe id="embed" title="Orders" src="{html.escape(src)}" '
                    'width="600" height="400"></iframe></body></html>'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.private_key = private_key
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, embed_id: str, params: dict) -> str:
        problem = params.get("problem")
        fields = {}
        if problem == "expired":
            fields = {"now": time.time() - 700, "seconds": 600}
        elif problem == "audience":
            fields = {"audience": "someone-else"}
        token = embed_token_sign(
            private_key=self.private_key,
            kid="shop-1",
            embed_id=embed_id,
            params={"tenant": params.get("tenant", "BE")},
            **fields,
        )
        if problem == "tampered":
            head, body, signature = token.split(".")
            token = f"{head}.{body}.{signature[:-4]}AAAA"
        return token

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def ed_keys() -> tuple[str, str]:
    return key_pair("EdDSA")


@pytest.fixture
def hosts(live_server, ed_keys):
    allowed, other = Host(live_server.url, ed_keys[0]), Host(live_server.url, ed_keys[0])
    yield allowed, other
    allowed.close()
    other.close()


@pytest.fixture
def embeds(pg_product, owner, ed_keys, hosts):
    allowed, _ = hosts
    common = dict(by=owner, product=pg_product, allowed_origins=[allowed.origin])
    table = embed_create(
        title="Your orders",
        chart="table",
        columns=["order_id", "amount"],
        locked_params={"tenant": "country"},
        allow_csv=True,
        **common,
    )
    chart = embed_create(
        title="Amount per order",
        chart="bar",
        columns=["order_id", "amount"],
        locked_params={"tenant": "country"},
        **common,
    )
    metric = Metric.objects.create(
        key="sales.order-amount",
        name="Order amount",
        port=pg_product.ports.get(),
        aggregation="sum",
        column="amount",
        dimensions=["country"],
    )
    kpi = embed_create(
        title="Your revenue",
        chart="kpi",
        metric=metric,
        locked_params={"tenant": "country"},
        **common,
    )
    embed_app_create(
        by=owner,
        name="Shop",
        domain=pg_product.domain,
        kid="shop-1",
        algorithm="EdDSA",
        public_key=ed_keys[1],
    )
    return table, chart, kpi


def _cells(frame) -> list[str]:
    return frame.locator("tbody td").all_inner_texts()


def test_an_allowed_host_shows_each_tenant_its_own_rows_and_draws_charts(
    page, hosts, embeds, screenshot_dir
):
    allowed, _ = hosts
    table, chart, kpi = embeds
    page.goto(f"{allowed.origin}/{table.pk}?tenant=BE")
    frame = page.frame_locator("#embed")
    expect(frame.get_by_role("heading", name="Your orders")).to_be_visible()
    expect(frame.locator("tbody tr")).to_have_count(2)
    assert _cells(frame) == ["1", "10", "3", "30"]
    page.screenshot(path=str(screenshot_dir / "embed-table-host.png"))

    with page.expect_download() as download:
        frame.get_by_role("link", name="CSV").click()
    assert download.value.path().read_text().splitlines() == [
        "order_id,amount",
        "1,10.0",
        "3,30.0",
    ]

    page.goto(f"{allowed.origin}/{table.pk}?tenant=NL")
    expect(page.frame_locator("#embed").locator("tbody tr")).to_have_count(1)
    assert _cells(page.frame_locator("#embed")) == ["2", "20"]

    page.goto(f"{allowed.origin}/{chart.pk}?tenant=BE")
    expect(page.frame_locator("#embed").locator(".embed-chart .main-svg").first).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "embed-chart-host.png"))

    page.requested_urls.clear()
    page.goto(f"{allowed.origin}/{kpi.pk}?tenant=BE")
    expect(page.frame_locator("#embed").locator(".embed-kpi-value")).to_have_text("40")
    assert not [url for url in page.requested_urls if "plotly" in url]  # plain HTML
    assert not page.console_errors, page.console_errors


def test_another_origin_is_refused_by_frame_ancestors(page, hosts, embeds):
    _, other = hosts
    table, _, _ = embeds
    page.goto(f"{other.origin}/{table.pk}?tenant=BE")
    page.wait_for_timeout(1500)  # what the frame would need to render
    frame = page.frame(url=lambda url: "/embed/" in url or url.startswith("chrome-error"))
    assert (
        frame is None or frame.url.startswith("chrome-error") or not frame.query_selector(".embed")
    )
    assert any("frame-ancestors" in message for message in page.console_errors)


@pytest.mark.parametrize("problem", ["expired", "tampered", "audience"])
def test_a_bad_token_gets_401_on_data_and_csv(page, hosts, embeds, problem):
    allowed, _ = hosts
    table, _, _ = embeds
    with page.expect_response(lambda r: "/data/" in r.url) as answer:
        page.goto(f"{allowed.origin}/{table.pk}?tenant=BE&problem={problem}")
    assert answer.value.status == 401
    frame = page.frame_locator("#embed")
    expect(frame.locator(".embed-error")).to_contain_text("token")
    assert frame.locator("tbody td").count() == 0
    token = allowed.token(str(table.pk), {"tenant": "BE", "problem": problem})
    csv = page.request.get(
        f"{answer.value.url}?format=csv",
        headers={"Authorization": f"Bearer {token}", "X-Embed-Origin": allowed.origin},
    )
    assert csv.status == 401 and "order_id" not in csv.text()
