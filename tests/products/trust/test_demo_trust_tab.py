"""The demo's quality tab: its 30 days of trust snapshots are computed from its 30 days of
check history by the trust formula (not invented), drawn across the whole window, with the
SLO targets; the page costs a bounded number of queries."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from products.demo.seed import demo_seed
from products.models import CheckResult, DataProduct, Incident, TrustScore
from products.trust.services.trust_score import WEIGHTS
from tests.products.trust.helpers import figures

pytestmark = pytest.mark.django_db(transaction=True)

DUPLICATES_LOADED = timedelta(hours=52)  # sales.orders: its order lines loaded twice (demo)
# The tab of the demo's orders, cold (figures computed) and warm (figures from the cache),
# with the top bar's links (main_nav) and the Access tab's pending-requests badge.
MAX_QUERIES_COLD = 27
MAX_QUERIES_WARM = 23


@pytest.fixture
def demo(settings, tmp_path):
    """The demo, small, its warehouse in a DuckDB file; the data's hour (as_of)."""
    settings.DEMO_DUCKDB_PATH = tmp_path / "warehouse.duckdb"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    as_of = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    demo_seed(warehouse="duckdb", rows_scale=0.05, as_of=as_of)
    return as_of


def test_demo_trust_history_follows_its_check_history_and_fills_the_chart(
    demo, client, django_assert_max_num_queries
):
    as_of = demo
    orders = DataProduct.objects.get_by_key("sales.orders")
    days = 30
    history = list(
        TrustScore.objects.filter(
            product=orders, computed_at__gte=datetime.now(UTC) - timedelta(days=days)
        ).order_by("computed_at")
    )
    # A snapshot a day across the window, then today's from the real check run.
    backfilled = [s for s in history if s.computed_at < as_of]
    assert [s.computed_at for s in backfilled] == [
        as_of - timedelta(days=n) for n in range(days - 1, 0, -1)
    ]
    assert history[-1].computed_at > as_of

    for snapshot in backfilled:
        evidence = snapshot.evidence
        # The formula's weights on its components...
        total = sum(WEIGHTS[name] * getattr(snapshot, name) for name in WEIGHTS)
        assert snapshot.score == pytest.approx(total, abs=0.06)
        # ...from the latest result of each check evaluated by then.
        for check in evidence["quality"]["checks"]:
            latest = (
                CheckResult.objects.filter(
                    quality_check_id=check["id"], evaluated_at__lte=snapshot.computed_at
                )
                .order_by("-evaluated_at", "-pk")
                .first()
            )
            assert check["result_id"] == latest.pk
        assert evidence["quality"]["not_run"] == []
    # The duplicates the checks found 52 hours before the data's hour: all passing before,
    # the uniqueness check failing and its incident open after.
    before = next(s for s in backfilled if s.computed_at == as_of - timedelta(days=3))
    after = next(s for s in backfilled if s.computed_at == as_of - timedelta(days=1))
    assert before.quality == 100.0 and before.evidence["support"]["incidents"] == []
    failing = [c["name"] for c in after.evidence["quality"]["checks"] if not c["passed"]]
    assert failing == ["Order lines are unique"]
    assert after.quality < 100.0
    incident = Incident.objects.get(product=orders, opened_at=as_of - DUPLICATES_LOADED)
    assert [row["id"] for row in after.evidence["support"]["incidents"]] == [incident.pk]
    assert after.evidence["support"]["note"].startswith(
        "1 unresolved incident, the oldest 1 day old"
    )
    assert len({s.score for s in history}) > 1  # the chart has a story to tell

    # The tab: the trust chart from the window's left edge to today, the SLO drawn.
    client.force_login(get_user_model().objects.get(username="owner"))
    url = "/products/sales/orders/quality/"
    with django_assert_max_num_queries(MAX_QUERIES_COLD):
        content = client.get(url).content.decode()
    with CaptureQueriesContext(connection) as warm:
        assert client.get(url).status_code == 200
    assert len(warm) <= MAX_QUERIES_WARM
    charts = figures(content)
    trust = charts["Trust score, last 30 days"]
    assert len(trust["data"][0]["x"]) == len(history)
    first = datetime.fromisoformat(trust["data"][0]["x"][0])
    start, end = (datetime.fromisoformat(x) for x in trust["layout"]["xaxis"]["range"])
    assert first - start < timedelta(days=1) and end - start >= timedelta(days=days)
    freshness = charts["Freshness lag"]["layout"]
    assert freshness["shapes"][0]["y0"] == 6.0  # the orders' freshness SLO: 6 hours
    assert freshness["annotations"][0]["text"] == "- - SLO: at most 6 h behind, 99% of the time"
    assert charts["Check pass rate"]["layout"]["shapes"][0]["y0"] == 95.0
    # Words, not internals.
    assert re.search(r"\d+ unresolved incidents?\.", content)
    assert "(s)" not in content
    assert "Every hour</span>" in content
