"""The demo's Quality and trust tab in a real browser: its charts drawn by the partial
plotly.js bundle (scatter and bar only, at most ~1.5 MB), the trust score's 30 days drawn
across the whole window, the freshness SLO as a labelled line."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from portal.core.plotly_assets import PLOTLY_BUNDLE, PLOTLY_JS, PLOTLY_VERSION
from products.demo.seed import demo_seed

BUNDLE_LIMIT = 1_600_000  # bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(settings, tmp_path):
    settings.DEMO_DUCKDB_PATH = tmp_path / "warehouse.duckdb"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    as_of = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    demo_seed(warehouse="duckdb", rows_scale=0.05, as_of=as_of)
    return as_of


# Each chart of the page as plotly.js drew it: its card's title, the x range of its axis,
# the x values of its first trace, the shapes and annotations of its layout.
DRAWN_CHARTS = """() => Array.from(document.querySelectorAll('.chart-card')).filter(
  card => card.querySelector('.js-plotly-plot')).map(card => {
    const plot = card.querySelector('.js-plotly-plot');
    return {
      title: card.querySelector('.card-title').textContent,
      range: plot._fullLayout.xaxis.range,
      x: plot.data[0].x,
      shapes: (plot.layout.shapes || []).map(s => s.y0),
      labels: Array.from(plot.querySelectorAll('.annotation-text')).map(a => a.textContent),
      lines: plot.querySelectorAll('.shapelayer path').length,
    };
  })"""


def test_the_trust_tab_draws_30_days_with_the_partial_bundle(
    demo, live_server, page, screenshot_dir
):
    page.goto("/login/?next=/products/sales/orders/quality/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill("portal-demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=2, name="Trust score")).to_be_visible()
    plots = page.locator(".js-plotly-plot .main-svg")
    expect(page.locator(".js-plotly-plot")).to_have_count(4)  # trust, rows, lag, pass rate
    expect(plots.first).to_be_visible()

    # plotly.js is the partial bundle, from the portal, once, and small.
    assert page.evaluate("() => window.Plotly.version") == PLOTLY_VERSION
    plotly_requests = [url for url in page.requested_urls if "/vendor/plotly/" in url]
    assert plotly_requests == [live_server.url + "/static/" + PLOTLY_BUNDLE]
    assert PLOTLY_JS.stat().st_size <= BUNDLE_LIMIT
    bundle = page.request.get("/static/" + PLOTLY_BUNDLE)
    assert bundle.ok and len(bundle.body()) <= BUNDLE_LIMIT

    charts = {chart["title"]: chart for chart in page.evaluate(DRAWN_CHARTS)}
    assert set(charts) == {
        "Trust score, last 30 days",
        "Row count",
        "Freshness lag",
        "Check pass rate",
    }
    trust = charts["Trust score, last 30 days"]
    start, end = (datetime.fromisoformat(moment.replace(" ", "T")) for moment in trust["range"])
    first = datetime.fromisoformat(trust["x"][0].replace(" ", "T").replace("+00:00", ""))
    assert end - start >= timedelta(days=30)  # the whole window...
    assert first - start.replace(tzinfo=None) < timedelta(days=1)  # ...drawn from its start
    assert len(trust["x"]) >= 30
    freshness = charts["Freshness lag"]
    assert freshness["shapes"] == [6] and freshness["lines"] == 1
    assert freshness["labels"] == ["- - SLO: at most 6 h behind, 99% of the time"]
    assert charts["Check pass rate"]["labels"] == ["- - SLO: 95% of evaluations passing"]

    # Hovering the trust chart shows a score.
    box = page.locator(".js-plotly-plot").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.screenshot(path=str(screenshot_dir / "trust-tab-demo.png"), full_page=True)
    page.locator("#observability").screenshot(path=str(screenshot_dir / "trust-tab-slo-lines.png"))
    assert page.console_errors == []
