"""The quality tab as people read it: charts over the whole 30 days with the SLO targets
drawn on them, counts in words ("1 unresolved incident"), schedules in words, the figures
kept while their evidence is unchanged, and plotly.js as a small bundle kept for good."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from portal.core.plotly_assets import PLOTLY_BUNDLE, PLOTLY_JS, PLOTLY_VERSION
from products.models import PortObservation, TrustScore
from products.trust.services.checks import check_run_execute, check_run_request
from products.trust.services.evidence import trust_after_check_run
from products.trust.services.incidents import incident_open, incident_resolve
from products.trust.services.slos import slo_create, slo_update
from products.trust.services.trust_score import trust_score_backfill, trust_score_compute
from tests.products.trust.helpers import figures

pytestmark = pytest.mark.django_db

QUALITY = "/products/sales/orders/quality/"
DAY = timedelta(days=1)


def observe(port, *, days: int = 30, lag_hours=lambda day: 2):
    """One reading a day for `days` days, the newest an hour ago."""
    now = timezone.now()
    for day in range(days):
        at = now - timedelta(days=day, hours=1)
        lag = lag_hours(day) * 3600
        PortObservation.objects.create(
            port=port,
            observed_at=at,
            available=True,
            row_count=100 + day,
            newest_at=at - timedelta(seconds=lag),
            freshness_lag_seconds=lag,
        )


def content_as(client, user) -> str:
    client.force_login(user)
    response = client.get(QUALITY)
    assert response.status_code == 200
    return response.content.decode()


def test_charts_span_the_whole_30_days_with_the_history_drawn_across_them(
    client, product, port, outsider
):
    observe(port)
    now = timezone.now()
    for day in range(29, 0, -1):
        TrustScore.objects.create(
            product=product,
            computed_at=now - day * DAY,
            score=70 + day % 7,
            quality=80,
            reliability=80,
            documentation=50,
            support=100,
            evidence={},
        )
    charts = figures(content_as(client, outsider))
    assert set(charts) == {"Trust score, last 30 days", "Row count", "Freshness lag"}

    for title, figure in charts.items():
        start, end = (
            datetime.fromisoformat(moment) for moment in figure["layout"]["xaxis"]["range"]
        )
        assert end - start >= timedelta(days=30), title  # the window, not the data's extent
        assert end >= now and start <= now - timedelta(days=30) + timedelta(minutes=5), title
    trust = charts["Trust score, last 30 days"]["data"][0]
    times = [datetime.fromisoformat(moment) for moment in trust["x"]]
    assert len(times) == 29 and times[0] <= now - timedelta(days=28)  # from the left edge
    assert trust["y"][0] == 70 + 29 % 7 and trust["type"] == "scatter"


def test_slo_targets_are_drawn_as_labelled_lines(client, product, port, owner, outsider):
    observe(port, lag_hours=lambda day: 2 + day % 5)
    freshness = slo_create(
        product=product, by=owner, kind="freshness", target_percent=95, threshold_hours=6
    )
    charts = figures(content_as(client, outsider))
    layout = charts["Freshness lag"]["layout"]
    (line,) = layout["shapes"]
    assert line["type"] == "line" and line["y0"] == line["y1"] == 6.0
    assert (line["xref"], line["x0"], line["x1"]) == ("paper", 0, 1)  # across the whole plot
    (label,) = layout["annotations"]
    assert label["text"] == "- - SLO: at most 6 h behind, 95% of the time"
    assert (label["yref"], label["y"], label["yanchor"]) == ("paper", 1, "bottom")  # above
    assert "shapes" not in charts["Row count"]["layout"]  # no SLO measures the row count

    # The target moves with the SLO (the cached charts are not kept past a change).
    slo_update(slo=freshness, by=owner, target_percent=99, threshold_hours=12)
    layout = figures(content_as(client, outsider))["Freshness lag"]["layout"]
    assert layout["shapes"][0]["y0"] == 12.0
    assert layout["annotations"][0]["text"] == "- - SLO: at most 12 h behind, 99% of the time"


def test_the_pass_rate_chart_shows_the_quality_slo(client, product, port, not_null, owner):
    slo_create(product=product, by=owner, kind="quality", target_percent=97.5)
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    trust_after_check_run(run=run)
    layout = figures(content_as(client, owner))["Check pass rate"]["layout"]
    assert layout["shapes"][0]["y0"] == 97.5
    assert layout["annotations"][0]["text"] == "- - SLO: 97.5% of evaluations passing"


def test_new_evidence_reaches_the_cached_charts(client, product, port, outsider):
    observe(port, days=3)
    first = figures(content_as(client, outsider))["Row count"]["data"][0]
    PortObservation.objects.create(
        port=port,
        observed_at=timezone.now(),
        available=True,
        row_count=999,
        newest_at=timezone.now(),
        freshness_lag_seconds=0,
    )
    second = figures(content_as(client, outsider))["Row count"]["data"][0]
    assert len(second["x"]) == len(first["x"]) + 1 and second["y"][-1] == 999


def test_counts_are_in_words(client, product, port, outsider):
    one, _ = incident_open(product=product, cause="slo", cause_key="slo:1", title="Late data")
    score = trust_score_compute(product=product)
    assert score.evidence["support"]["note"].startswith(
        "1 unresolved incident, the oldest 0 days old;"
    )
    content = content_as(client, outsider)
    assert "1 unresolved incident, the oldest 0 days old;" in content
    assert "1 unresolved incident." in content
    assert "(s)" not in content

    incident_open(product=product, cause="slo", cause_key="slo:2", title="Source down")
    TrustScore.objects.filter(product=product).delete()
    note = trust_score_compute(product=product, now=timezone.now() + DAY).evidence["support"]
    assert note["note"].startswith("2 unresolved incidents, the oldest 1 day old;")
    content = content_as(client, outsider)
    assert "2 unresolved incidents." in content

    incident_resolve(incident=one, by=product.owners.get(), note="Back on time.")
    content = content_as(client, outsider)
    assert "1 unresolved incident and 1 recently resolved." in content


def test_schedules_read_in_words(client, product, port, not_null, owner, outsider):
    product.check_schedule = "0 6 * * *"
    product.save(update_fields=["check_schedule"])
    content = content_as(client, outsider)
    assert "Every day at 06:00 UTC</span>" in content
    assert "0 6 * * *" not in content  # the expression is for the people who edit it
    assert '<code class="small">0 6 * * *</code>' in content_as(client, owner)


def test_a_past_snapshot_counts_only_what_was_known_then(product, port, owner):
    """trust_score_backfill: the incidents open then, not those opened or resolved since."""
    now = timezone.now()
    incident, _ = incident_open(product=product, cause="slo", cause_key="slo:1", title="Late")
    incident.opened_at = now - 5 * DAY
    incident.save(update_fields=["opened_at"])
    incident_resolve(incident=incident, by=owner, note="Fixed.")
    later = timezone.now()
    before, during, after = trust_score_backfill(
        product=product, moments=[now - 3 * DAY, later, now - 7 * DAY]
    )
    assert [s.computed_at for s in (before, during, after)] == [now - 7 * DAY, now - 3 * DAY, later]
    assert before.support == 100 and after.support == 100
    # Open for 2 days then: 100 - 20 - 2 x 2.
    assert during.support == 76
    assert [row["status"] for row in during.evidence["support"]["incidents"]] == ["open"]
    assert during.evidence["support"]["note"].startswith(
        "1 unresolved incident, the oldest 2 days old;"
    )


def test_plotly_is_a_partial_bundle_kept_for_good(client, outsider):
    assert PLOTLY_JS.stat().st_size <= 1_600_000
    assert PLOTLY_BUNDLE == f"vendor/plotly/plotly-basic-{PLOTLY_VERSION}.min.js"
    client.force_login(outsider)
    response = client.get("/static/" + PLOTLY_BUNDLE)
    assert response.status_code == 200
    assert "immutable" in response["Cache-Control"]
    assert "max-age=315360000" in response["Cache-Control"]
    # Other static files keep their short lifetime (their names do not change with them).
    assert "immutable" not in client.get("/static/js/charts.js").get("Cache-Control", "")
