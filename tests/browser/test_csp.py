"""The Content Security Policy holds on real pages: every page answers with the policy,
and chromium reports no violation while the pages render and their scripts run — the
catalog, a product, its quality tab with plotly charts (drawn, hovered), its access and
data tabs, the forms, the API docs, the admin, the sign-in and lockout pages.

A violation fails the test with the page and what was blocked: inline code, a style=
attribute or a <style> injected by a script must move to a static file."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from portal.core.plotly_assets import (
    collect_injected_styles,
    manifest,
    output_dir,
    plotly_js_version,
)
from products.choices import MembershipRole
from products.models import PortObservation, TrustScore
from products.trust.services.checks import check_create, check_run_execute, check_run_request
from products.trust.services.slos import slo_create
from sharing.access.services.requests import access_request_create
from sharing.models import AccessGrant
from tests.factories import PASSWORD, MembershipFactory, UserFactory, parquet_product
from tests.urlwalk import routes

ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "BE", "FR"],
    "email": ["a@x", None, None, "d@x"],
}

# Collects what the browser blocked, in every document (frames included), from the start.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
    (e.sample ? " (" + e.sample + ")" : "") + " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


@pytest.fixture
def world(domain, owner, media_root):
    """sales.orders with a Parquet port, a month of monitor readings and trust scores
    (charts), a run of a failing check, an SLO, a grant and a pending request."""
    product = parquet_product(
        media_root=media_root,
        domain=domain,
        rows=ROWS,
        file_path="csp/orders.parquet",
        owners=[owner],
        access_auto_approve=False,
    )
    port = product.ports.get()
    now = timezone.now()
    for days in range(20, 0, -1):
        PortObservation.objects.create(
            port=port,
            observed_at=now - timedelta(days=days),
            available=True,
            row_count=4,
            newest_at=now - timedelta(days=days, hours=3),
            freshness_lag_seconds=3 * 3600,
        )
        TrustScore.objects.create(
            product=product,
            computed_at=now - timedelta(days=days),
            score=70 + days % 7,
            quality=90,
            reliability=80,
            documentation=60,
            support=100,
            evidence={},
        )
    slo_create(product=product, by=owner, kind="freshness", target_percent=95, threshold_hours=6)
    check_create(port=port, by=owner, name="email", kind="not_null", column="email")
    run = check_run_request(port=port, by=owner)
    check_run_execute(run_id=run.pk)
    analyst = UserFactory(username="analyst")
    viewer = UserFactory(username="viewer")
    AccessGrant.objects.create(
        product=product,
        user=viewer,
        columns=["order_id", "country"],
        expires_at=now + timedelta(days=30),
        reason="Quarterly report",
    )
    access_request_create(
        product=product, by=analyst, purpose="Churn analysis", columns=["order_id"]
    )
    steward = UserFactory(username="steward")
    MembershipFactory(domain=domain, user=steward, role=MembershipRole.STEWARD)
    UserFactory(username="admin", is_staff=True, is_superuser=True)
    return product


class Visit:
    """Signs in through the form, then opens pages, keeping every violation."""

    def __init__(self, page, live_server):
        self.page = page
        self.live_server = live_server
        self.violations: list[str] = []
        self.policies: dict[str, str] = {}
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)
        page.on("response", self._response)
        self.where = ""

    def _console(self, message):
        if "Content Security Policy" in message.text:
            self.violations.append(f"{self.where}: console: {message.text}")

    def _response(self, response):
        if response.request.resource_type == "document":
            self.policies[response.url] = response.headers.get("content-security-policy", "")

    def collect(self):
        for frame in self.page.frames:
            try:
                found = frame.evaluate("window.__csp || []")
            except Exception:  # noqa: BLE001 - a frame gone while we ask
                continue
            self.violations.extend(f"{self.where}: {item}" for item in found)

    def sign_in(self, username: str, *, next_url: str = "/"):
        self.page.context.clear_cookies()
        self.open(f"/login/?next={next_url}")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.where = f"signed in as {username}, redirected to {next_url}"
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state("load")
        expect(self.page.locator(".user-menu")).to_be_visible()
        self.collect()

    def open(self, path: str, *, ready: str | None = None):
        self.where = path
        self.page.goto(path)
        self.page.wait_for_load_state("load")
        if ready:
            expect(self.page.locator(ready).first).to_be_visible()
        self.page.wait_for_timeout(150)  # late work of deferred scripts
        self.collect()


def crawl_pages(visit, product, *, skip: set[str]) -> list[str]:
    """Open every page route (not the API, not the admin) whose path needs no more than
    the product's coordinates, its port or its domain."""
    port = product.ports.get()
    values = {
        "domain_slug": product.domain.slug,
        "product_slug": product.slug,
        "port_slug": port.slug,
        "slug": product.domain.slug,
    }
    opened = []
    for route in routes():
        if route.is_api or route.is_admin or "get" not in route.methods():
            continue
        if not set(route.kwargs) <= set(values):
            continue
        path = route.path({name: values[name] for name in route.kwargs})
        if path is None or path in skip or path.startswith(("/logout", "/login")):
            continue
        response = visit.page.request.get(path)  # downloads and fragments are not pages
        if response.status != 200 or "text/html" not in response.headers.get("content-type", ""):
            continue
        if "<html" not in response.text()[:500].lower():
            continue
        visit.open(path)
        opened.append(path)
    return opened


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_render_within_the_content_security_policy(live_server, page, world):
    visit = Visit(page, live_server)
    product_url = world.get_absolute_url()

    visit.open("/login/", ready="form")
    visit.sign_in("owner", next_url=product_url)
    visited = [
        ("/", ".result"),
        ("/search/?q=orders", ".result"),
        (product_url, "h1"),
        (product_url + "edit/", "form"),
        (product_url + "ports/new/", "form"),
        (product_url + "checks/new/", "form"),
        (product_url + "slos/new/", "form"),
        (product_url + "access/", "h1"),
        (product_url + "data/", "table"),
        ("/domains/", "h1"),
        ("/domains/sales/", "h1"),
        ("/my/products/", "h1"),
        ("/my/access/", "h1"),
        ("/trust-score/", "h1"),
        ("/api/v1/docs/", ".swagger-ui .info"),
    ]
    for path, ready in visited:
        visit.open(path, ready=ready)

    # And every other page the owner can open with what this world holds (routes of
    # features added later included): each HTML page that answers 200.
    crawled = crawl_pages(visit, world, skip={path for path, _ in visited})
    assert crawled, "the walk opened no page"

    # The quality tab: the charts are drawn by plotly.js (an SVG each), and hovering one
    # draws its hover label, all without a <style> injected or an inline style refused.
    visit.open(product_url + "quality/", ready=".js-plotly-plot .main-svg")
    charts = page.locator(".js-plotly-plot")
    expect(charts).to_have_count(4)  # trust score, row count, freshness, pass rate
    for index in range(charts.count()):
        expect(charts.nth(index).locator(".main-svg").first).to_be_visible()
    chart = charts.first
    chart.scroll_into_view_if_needed()
    box = chart.locator(".nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2)
    expect(chart.locator(".hoverlayer > *")).not_to_have_count(0)  # the hover label
    chart.locator(".modebar-btn").first.hover()
    injected_styles = page.locator("style").count()
    visit.collect()

    visit.sign_in("analyst", next_url=product_url + "access/")
    visit.open(product_url + "quality/", ready=".js-plotly-plot .main-svg")
    visit.sign_in("viewer", next_url=product_url + "data/")
    visit.open(product_url + "data/", ready="table")

    visit.sign_in("admin", next_url="/audit/")
    visit.open("/admin/", ready="#content")
    visit.open(f"/admin/products/dataproduct/{world.pk}/change/", ready="form")

    # The lockout page, after too many failed sign-ins.
    page.context.clear_cookies()
    for _ in range(5):
        visit.open("/login/", ready="form")
        page.get_by_label("Username").fill("viewer")
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state("load")
    expect(page.get_by_role("heading", name="Sign-in paused")).to_be_visible()
    visit.collect()

    assert visit.violations == []
    assert injected_styles == 0, "a script injected a <style> element into the quality tab"
    assert visit.policies, "no page was loaded"
    for url, policy in visit.policies.items():
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, url
        assert "unsafe-inline" not in policy, url
    outside = [url for url in page.requested_urls if not url.startswith(live_server.url)]
    assert [url for url in outside if not url.startswith("data:")] == []


@pytest.mark.browser
def test_the_plotly_stylesheets_match_the_installed_plotly_js(browser):
    """static/vendor/plotly-csp holds exactly what our plotly.js bundle would
    inject; after upgrading it, run `python manage.py plotly_csp_css`."""
    page = browser.new_page()
    try:
        styles = collect_injected_styles(page)
    finally:
        page.close()
    hint = "Run `python manage.py plotly_csp_css` after upgrading plotly."
    assert manifest()["plotly_js"] == plotly_js_version(), hint
    sheets = manifest()["sheets"]
    global_css = (output_dir() / sheets[0]["file"]).read_text()
    assert styles["global"], "plotly.js injected no global rules: its CSP handling changed"
    assert re.sub(r"^/\*.*?\*/\n", "", global_css) == "\n".join(styles["global"]) + "\n", hint
    assert [block["id"] for block in styles["injected"]] == [s["id"] for s in sheets[1:]], hint
    for block, sheet in zip(styles["injected"], sheets[1:], strict=True):
        text = (output_dir() / sheet["file"]).read_text()
        assert re.sub(r"^/\*.*?\*/\n", "", text) == block["css"] + "\n", hint
