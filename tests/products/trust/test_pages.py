"""Trust pages: the quality tab in each state (no port, no checks, no runs, no SLOs, no
incidents, and with all of them), the incident banner, the trust badge and its evidence
links, failing rows only for people who may read rows, the check, SLO and incident forms
with their field errors, run progress (HTMX polling), the trust-score explanation, and
query counts that do not grow with the evidence."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.core.plotly_assets import PLOTLY_BUNDLE
from products.choices import CheckRunStatus, IncidentCause, IncidentStatus, LifecycleStatus
from products.models import Check, CheckRun, Incident, PortObservation, TrustScore
from products.trust.services.checks import check_create, check_run_execute, check_run_request
from products.trust.services.evidence import trust_after_check_run
from products.trust.services.incidents import incident_open
from products.trust.services.slos import slo_create
from products.trust.services.trust_score import trust_score_compute
from tests.factories import FilePortFactory, ProductFactory
from tests.products.trust.helpers import orders_parquet

pytestmark = pytest.mark.django_db

PAGE = "/products/sales/orders/"
QUALITY = PAGE + "quality/"
HX = {"HTTP_HX_REQUEST": "true"}


def _finished_run(port, owner) -> CheckRun:
    run = check_run_request(port=port, by=owner)
    run = check_run_execute(run_id=run.pk)
    trust_after_check_run(run=run)
    return run


def _content(client, url, status=200) -> str:
    response = client.get(url)
    assert response.status_code == status, url
    return response.content.decode()


# --- the quality tab, state by state -------------------------------------------------------


def test_quality_tab_without_a_port(client, product, owner, outsider):
    client.force_login(owner)
    content = _content(client, QUALITY)
    assert "No output port yet, so nothing to check" in content
    assert 'href="/products/sales/orders/ports/new/"' in content
    assert "No SLOs yet. Promise consumers" in content
    assert "No incidents — nothing has broken." in content
    assert "Not computed yet." in content
    assert "No history yet" in content
    assert "vendor/plotly/" not in content  # no chart, no plotly.js

    client.force_login(outsider)
    content = _content(client, QUALITY)
    assert "No output port yet" in content
    assert "ports/new/" not in content
    assert "No SLOs yet: the owners have not promised" in content
    assert "Add an SLO" not in content


def test_a_port_without_checks_invites_editors_to_add_one(client, port, owner, outsider):
    client.force_login(owner)
    content = _content(client, QUALITY)
    assert "No checks on this port yet." in content
    assert 'href="/products/sales/orders/checks/new/?port=orders-file"' in content
    assert "Run checks" not in content  # nothing to run yet

    client.force_login(outsider)
    content = _content(client, QUALITY)
    assert "No checks yet" in content
    assert "checks/new/" not in content and "Add a check" not in content


def test_checks_before_their_first_run(client, port, not_null, owner, outsider):
    check_create(port=port, by=owner, kind="unique", column="order_id", schedule="30 6 * * 1")
    client.force_login(owner)
    content = _content(client, QUALITY)
    assert "Email set" in content
    assert content.count("Not run yet") == 2
    assert "Run checks" in content
    # Each check's schedule, and its next three times.
    # In words, with the cron expression for the people who edit it.
    assert 'Every hour</span> <span class="muted small">(product default)</span>' in content
    assert '<code class="small">0 * * * *</code>' in content
    assert "Every Monday at 06:30 UTC</span>" in content
    assert '<code class="small">30 6 * * 1</code>' in content
    next_runs = re.findall(r'<span class="next-runs small">Next: (.*?)</span>', content, re.S)
    assert len(next_runs) == 2
    assert all(len(re.findall(r"<time ", times)) == 3 for times in next_runs)
    assert "Mon" in next_runs[1] and "06:30" in next_runs[1]
    assert "Recent check runs" not in content
    assert "No run yet. Press “Run checks” to run them now" in content
    assert 'href="/products/sales/orders/checks/' in content  # Edit links

    client.force_login(outsider)
    content = _content(client, QUALITY)
    assert "Email set" in content
    assert "No run yet. They run on their schedule" in content
    assert "Run checks" not in content and "/edit/" not in content
    assert "Every Monday at 06:30 UTC" in content and "30 6 * * 1" not in content


def test_quality_tab_with_results_slos_incidents_and_charts(
    client, product, port, not_null, owner, outsider, member
):
    slo_create(product=product, by=owner, kind="availability", target_percent=99)
    slo_create(product=product, by=owner, kind="freshness", target_percent=90, threshold_hours=6)
    run = _finished_run(port, owner)
    client.force_login(outsider)
    content = _content(client, QUALITY)

    # The trust score and its four components, each linked to its evidence.
    latest = TrustScore.objects.filter(product=product).order_by("-computed_at").first()
    assert f"Trust score {latest.score:.0f} out of 100" in content
    for anchor in ("#checks", "#slos", "#incidents"):
        assert f'href="/products/sales/orders/quality/{anchor}" class="trust-component-link"' in (
            content
        )
    assert 'href="/products/sales/orders/#documentation"' in content
    assert 'href="/trust-score/"' in content and "How is this computed?" in content
    # The checks table and the latest run's failing result.
    assert "badge-outcome-fail" in content
    assert "2 failing (40%)" in content
    assert "2 null rows of 5 (40%)." in content
    assert "no failing rows" in content  # the tolerance, in words
    assert f'href="/products/sales/orders/check-runs/{run.pk}/"' in content
    # Outsiders do not see the failing rows themselves.
    assert "Failing rows are shown only to people who may read this product" in content
    assert "sample-table" not in content
    # SLOs with 7- and 30-day attainment and the error budget left.
    assert "Availability" in content and "data at most 6 h old" in content
    assert "100.00%" in content and "1 of 1" in content
    assert "budget-meter" in content
    # The incident the failing check opened.
    assert "Check &#x27;Email set&#x27; failing on Orders" in content
    assert "badge-incident-open" in content
    # Charts, drawn by plotly.js from our own static files.
    assert f'<script src="/static/{PLOTLY_BUNDLE}" defer></script>' in content
    assert content.count("data-plotly-figure=") == 3  # drawn by js/charts.js, no inline code
    # The file has no freshness column: no lag to draw, and the page says why.
    assert "the lag is measured on a port's freshness column" in content
    assert not re.search(r'<script[^>]+src="(https?:)?//', content)

    client.force_login(member)
    content = _content(client, QUALITY)
    assert "sample-table" in content
    assert "Failing rows (sample of 2)" in content
    assert '<span class="null">null</span>' in content


def test_plotly_is_served_from_our_static_files(client, outsider):
    client.force_login(outsider)
    response = client.get("/static/" + PLOTLY_BUNDLE)
    assert response.status_code == 200
    head = b"".join(response.streaming_content)[:2000] if response.streaming else response.content
    assert b"plotly" in head.lower()


def test_charts_draw_observations_and_pass_rates(client, product, port, not_null, owner):
    now = timezone.now()
    for days in range(5, 0, -1):
        PortObservation.objects.create(
            port=port,
            observed_at=now - timedelta(days=days),
            available=True,
            row_count=100 * days,
            freshness_lag_seconds=3600 * days,
        )
    _finished_run(port, owner)
    client.force_login(owner)
    charts = client.get(QUALITY).context["charts"]
    assert "500" in charts["row_count"] and "100" in charts["row_count"]
    assert '"y":[5.0,4.0,3.0,2.0,1.0' in charts["freshness"].replace(" ", "")
    assert "Orders file" in charts["row_count"]  # one line per port
    assert '"y":[0.0]' in charts["pass_rate"].replace(" ", "")  # today: nothing passed


def test_a_hidden_product_is_404_on_every_trust_page(client, domain, owner, outsider, media_root):
    draft = ProductFactory(domain=domain, slug="draft", status=LifecycleStatus.DRAFT)
    port = FilePortFactory(
        product=draft, slug="p", file_path=orders_parquet(media_root, "d.pq", ["x"])
    )
    check = check_create(port=port, by=owner, kind="row_count", params={"min": 1})
    run = _finished_run(port, owner)
    incident, _ = incident_open(product=draft, cause="slo", cause_key="slo:x", title="Hidden")
    client.force_login(outsider)
    base = "/products/sales/draft/"
    for url in (
        "quality/",
        "checks/new/",
        f"checks/{check.pk}/edit/",
        "ports/p/checks/",
        f"check-runs/{run.pk}/",
        f"incidents/{incident.pk}/",
        "slos/new/",
    ):
        assert client.get(base + url).status_code == 404, url
    for url in ("ports/p/checks/run/", f"incidents/{incident.pk}/resolve/", "checks/new/"):
        assert client.post(base + url, {"note": "x"}).status_code == 404, url
    assert client.get("/products/sales/draft/quality/").status_code == 404
    assert CheckRun.objects.count() == 1


def test_quality_page_query_count_does_not_grow_with_evidence(
    client, product, port, owner, outsider, django_assert_max_num_queries
):
    check_create(port=port, by=owner, kind="not_null", column="email")
    slo_create(product=product, by=owner, kind="quality", target_percent=90)
    _finished_run(port, owner)
    client.force_login(outsider)
    with CaptureQueriesContext(connection) as small:
        assert client.get(QUALITY).status_code == 200

    other = FilePortFactory(product=product, slug="other", file_path=port.file_path)
    for n in range(8):
        check_create(
            port=port, by=owner, kind="range", column="order_id", params={"min": n}, name=f"r{n}"
        )
        check_create(port=other, by=owner, kind="unique", column="order_id", name=f"u{n}")
    slo_create(product=product, by=owner, kind="availability", target_percent=90)
    for _ in range(3):
        _finished_run(port, owner)
        _finished_run(other, owner)
    for n in range(6):
        incident_open(product=product, cause="slo", cause_key=f"slo:{n}", title=f"Incident {n}")
    with django_assert_max_num_queries(len(small) + 1):  # one query per SLO
        assert client.get(QUALITY).status_code == 200


# --- banner, badge and overview -------------------------------------------------------------


def test_incident_banner_on_every_product_page_for_everyone(client, product, port, outsider):
    incident, _ = incident_open(
        product=product, port=port, cause="availability", cause_key="a:1", title="Source down"
    )
    client.force_login(outsider)
    for url in (PAGE, QUALITY):
        content = _content(client, url)
        assert "data-incident-banner" in content, url
        assert "Incident open:" in content and "Source down" in content
    Incident.objects.filter(pk=incident.pk).update(
        status=IncidentStatus.ACKNOWLEDGED, acknowledged_at=timezone.now()
    )
    content = _content(client, PAGE)
    assert "the owners acknowledged it" in content and "is-acknowledged" in content
    Incident.objects.filter(pk=incident.pk).update(status=IncidentStatus.RESOLVED)
    assert "data-incident-banner" not in _content(client, PAGE)


def test_overview_shows_the_trust_badge_and_breakdown(client, product, port, not_null, owner):
    client.force_login(owner)
    content = _content(client, PAGE)
    assert "Trust score: not computed yet" in content
    assert "No trust score yet" in content

    _finished_run(port, owner)
    score = TrustScore.objects.filter(product=product).order_by("-computed_at").first()
    content = _content(client, PAGE)
    assert f"Trust score {score.score:.0f} out of 100" in content
    for label in ("Quality", "Reliability", "Documentation", "Support"):
        assert f'<span class="trust-bar-label">{label}</span>' in content
    assert 'href="/products/sales/orders/quality/#checks"' in content
    assert 'href="/trust-score/"' in content
    assert 'aria-current="page">Overview</a>' in content
    assert 'href="/products/sales/orders/quality/">Quality and trust' in content


def test_trust_score_docs_page_renders_the_formula_safely(client, outsider, tmp_path, monkeypatch):
    from products.trust import views as trust_views

    client.force_login(outsider)
    content = _content(client, "/trust-score/")
    assert "<h1" in content and "quality" in content.lower()

    doc = tmp_path / "trust-score.md"
    doc.write_text("# Score\n\n<script>alert(1)</script>\n\n**0.35** x quality\n")
    monkeypatch.setattr(trust_views, "TRUST_DOC", doc)
    content = _content(client, "/trust-score/")
    assert "<strong>0.35</strong> x quality" in content
    assert "<script>alert(1)</script>" not in content


# --- check forms ---------------------------------------------------------------------------


def test_owner_adds_a_not_null_check(client, port, owner):
    client.force_login(owner)
    content = _content(client, f"{PAGE}checks/new/")
    assert "{table}" in content  # the custom SQL placeholder is explained
    assert '<option value="email">' in content  # known columns offered
    response = client.post(
        f"{PAGE}checks/new/",
        {
            "port": port.pk,
            "kind": "not_null",
            "column": "email",
            "severity": "error",
            "tolerance_percent": "0.5",
            "schedule": "",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/products/sales/orders/quality/#checks-orders-file"
    check = Check.objects.get()
    assert (check.name, check.kind, check.column) == ("Not null email", "not_null", "email")
    assert check.tolerance_percent == 0.5 and check.enabled and check.port == port


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"kind": "not_null", "column": "email", "tolerance_percent": "150"},
            "tolerance_percent",
            "from 0 to 100",
        ),
        (
            {"kind": "not_null", "column": "email", "tolerance_percent": "-1"},
            "tolerance_percent",
            "from 0 to 100",
        ),
        ({"kind": "not_null", "column": "email", "schedule": "daily"}, "schedule", "5 fields"),
        ({"kind": "not_null", "column": ""}, "column", "Name the column"),
        ({"kind": "custom_sql", "sql": "DELETE FROM {table}"}, "sql", ""),
        (
            {"kind": "accepted_values", "column": "email", "accepted_values": ""},
            "accepted_values",
            "accepted values",
        ),
        ({"kind": "range", "column": "order_id"}, "range_min", "a minimum, a maximum or both"),
        ({"kind": "freshness", "column": "email"}, "max_age_hours", "hours old"),
        ({"kind": "row_count", "row_count_min": "-3"}, "row_count_min", ""),
    ],
)
def test_check_form_shows_errors_beside_their_field(client, port, owner, fields, field, message):
    client.force_login(owner)
    data = {"port": port.pk, "severity": "error", "tolerance_percent": "0", **fields}
    response = client.post(f"{PAGE}checks/new/", data)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors, form.errors
    assert message in " ".join(form.errors[field])
    assert "Please correct the fields marked below." in response.content.decode()
    assert not Check.objects.exists()


def test_custom_sql_check_from_the_form(client, port, owner):
    client.force_login(owner)
    sql = "SELECT count(*) FROM {table} WHERE email IS NULL"
    response = client.post(
        f"{PAGE}checks/new/",
        {"kind": "custom_sql", "sql": sql, "severity": "warn", "tolerance_percent": "1"},
    )
    assert response.status_code == 302, response.context["form"].errors
    check = Check.objects.get()
    assert check.params == {"sql": sql} and check.severity == "warn"
    assert check.port == port  # the product's only port


def test_owner_edits_and_deletes_a_check(client, port, not_null, owner):
    client.force_login(owner)
    url = f"{PAGE}checks/{not_null.pk}/edit/"
    form = client.get(url).context["form"]
    assert form.initial["column"] == "email" and form.initial["name"] == "Email set"
    response = client.post(
        url,
        {
            "kind": "accepted_values",
            "column": "email",
            "accepted_values": "a@x\n c@x \n\n",
            "name": "Known emails",
            "severity": "warn",
            "tolerance_percent": "10",
            "schedule": "15 3 * * *",
        },
    )
    assert response.status_code == 302
    not_null.refresh_from_db()
    assert not_null.name == "Known emails" and not_null.params == {"values": ["a@x", "c@x"]}
    assert not_null.schedule == "15 3 * * *" and not not_null.enabled
    assert client.get(url).context["form"].initial["accepted_values"] == "a@x\nc@x"

    response = client.post(f"{PAGE}checks/{not_null.pk}/delete/")
    assert response.status_code == 302
    assert not Check.objects.exists()


def test_only_editors_use_the_check_forms(client, port, not_null, member, outsider):
    for user in (member, outsider):
        client.force_login(user)
        assert client.get(f"{PAGE}checks/new/").status_code == 403
        assert client.post(f"{PAGE}checks/new/", {"kind": "unique"}).status_code == 403
        assert client.get(f"{PAGE}checks/{not_null.pk}/edit/").status_code == 403
        assert client.post(f"{PAGE}checks/{not_null.pk}/delete/").status_code == 403
    assert Check.objects.count() == 1


def test_adding_a_check_without_a_port_says_what_to_do(client, product, owner):
    client.force_login(owner)
    response = client.get(f"{PAGE}checks/new/", follow=True)
    assert "Add an output port first" in response.content.decode()


# --- running checks --------------------------------------------------------------------------


def test_run_checks_shows_progress_then_reloads_when_settled(client, port, not_null, owner):
    client.force_login(owner)
    response = client.post(f"{PAGE}ports/orders-file/checks/run/", **HX)
    assert response.status_code == 200
    content = response.content.decode()
    assert "Checks queued" in content and 'class="spinner"' in content
    assert 'hx-get="/products/sales/orders/ports/orders-file/checks/?poll=1"' in content
    assert 'hx-trigger="every 1s"' in content
    assert re.search(r"<button[^>]*disabled[^>]*>Run checks</button>", content)
    run = CheckRun.objects.get()
    assert run.status == CheckRunStatus.QUEUED and run.requested_by == owner

    poll = f"{PAGE}ports/orders-file/checks/?poll=1"
    CheckRun.objects.filter(pk=run.pk).update(status=CheckRunStatus.RUNNING)
    content = client.get(poll, **HX).content.decode()
    assert "Running checks" in content and "every 1s" in content

    CheckRun.objects.filter(pk=run.pk).update(status=CheckRunStatus.QUEUED)
    check_run_execute(run_id=run.pk)  # finished, but the trust score has not caught up
    response = client.get(poll, **HX)
    assert "HX-Refresh" not in response
    assert "updating incidents and the trust score" in response.content.decode()
    assert "every 1s" in response.content.decode()

    trust_after_check_run(run=CheckRun.objects.get())
    response = client.get(poll, **HX)
    assert response["HX-Refresh"] == "true"  # the page reloads: banner, score, charts
    content = response.content.decode()
    assert "every 1s" not in content and "0 passed, 1 failed" in content


def test_run_checks_without_javascript(client, port, not_null, owner):
    client.force_login(owner)
    response = client.post(f"{PAGE}ports/orders-file/checks/run/", follow=True)
    assert response.redirect_chain == [("/products/sales/orders/quality/#checks-orders-file", 302)]
    content = response.content.decode()
    assert "Checks of Orders file queued." in content
    assert "Checks queued" in content


def test_only_editors_run_checks(client, port, not_null, member, outsider):
    for user in (member, outsider):
        client.force_login(user)
        assert client.post(f"{PAGE}ports/orders-file/checks/run/", **HX).status_code == 403
    assert not CheckRun.objects.exists()


def test_a_failed_run_says_why_to_editors_only(client, product, owner, outsider):
    port = FilePortFactory(product=product, slug="gone", file_path="nowhere/x.parquet")
    check_create(port=port, by=owner, kind="row_count", params={"min": 1})
    run = _finished_run(port, owner)
    assert run.status == CheckRunStatus.ERROR
    client.force_login(owner)
    content = _content(client, QUALITY)
    assert "The check run failed" in content and run.error[:30] in content
    client.force_login(outsider)
    content = _content(client, QUALITY)
    assert "The check run failed" in content and run.error[:30] not in content
    assert "owners and stewards can see why" in content


def test_run_page_shows_results_and_samples_to_readers(client, port, not_null, owner, outsider):
    run = _finished_run(port, owner)
    client.force_login(owner)
    content = _content(client, f"{PAGE}check-runs/{run.pk}/")
    assert f"Check run #{run.pk}" in content
    assert "0 passed, 1 failed, 0 could not run" in content
    assert "Failing rows (sample of 2)" in content
    client.force_login(outsider)
    content = _content(client, f"{PAGE}check-runs/{run.pk}/")
    assert "2 null rows of 5 (40%)." in content
    assert "Failing rows (sample" not in content
    assert client.get(f"{PAGE}check-runs/999999/").status_code == 404


# --- SLO forms ---------------------------------------------------------------------------------


def test_owner_adds_edits_and_deletes_an_slo(client, product, owner):
    client.force_login(owner)
    response = client.post(
        f"{PAGE}slos/new/",
        {"kind": "freshness", "target_percent": "99", "threshold_hours": "24", "description": "d"},
    )
    assert response.status_code == 302 and response["Location"].endswith("quality/#slos")
    slo = product.slos.get()
    assert (slo.kind, slo.target_percent, slo.threshold_hours) == ("freshness", 99, 24)

    # The kinds the product has are not offered again.
    kinds = [
        value for value, _ in client.get(f"{PAGE}slos/new/").context["form"].fields["kind"].choices
    ]
    assert kinds == ["availability", "quality"]

    url = f"{PAGE}slos/{slo.pk}/edit/"
    assert client.get(url).context["form"].initial["threshold_hours"] == 24
    response = client.post(
        url, {"kind": "freshness", "target_percent": "95", "threshold_hours": "12"}
    )
    assert response.status_code == 302
    slo.refresh_from_db()
    assert (slo.target_percent, slo.threshold_hours) == (95, 12)

    assert client.post(f"{PAGE}slos/{slo.pk}/delete/").status_code == 302
    assert not product.slos.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "freshness", "target_percent": "99"}, "threshold_hours"),
        ({"kind": "quality", "target_percent": "0"}, "target_percent"),
        ({"kind": "quality", "target_percent": "120"}, "target_percent"),
        ({"kind": "quality", "target_percent": "lots"}, "target_percent"),
        ({"kind": "uptime", "target_percent": "99"}, "kind"),
    ],
)
def test_slo_form_shows_errors_beside_their_field(client, product, owner, data, field):
    client.force_login(owner)
    response = client.post(f"{PAGE}slos/new/", data)
    assert response.status_code == 400
    assert field in response.context["form"].errors, response.context["form"].errors
    assert not product.slos.exists()


def test_only_editors_use_the_slo_forms(client, product, owner, member, outsider):
    slo = slo_create(product=product, by=owner, kind="quality", target_percent=90)
    for user in (member, outsider):
        client.force_login(user)
        assert client.get(f"{PAGE}slos/new/").status_code == 403
        assert client.post(f"{PAGE}slos/{slo.pk}/delete/").status_code == 403
    assert product.slos.exists()


# --- incidents -------------------------------------------------------------------------------


@pytest.fixture
def incident(product, port):
    incident, _ = incident_open(
        product=product,
        port=port,
        cause=IncidentCause.CHECK,
        cause_key="check:1",
        title="Check 'Email set' failing on Orders",
        body="2 null rows of 5.",
    )
    return incident


def test_incident_page_for_consumers(client, incident, outsider):
    client.force_login(outsider)
    content = _content(client, f"{PAGE}incidents/{incident.pk}/")
    assert "Check &#x27;Email set&#x27; failing on Orders" in content
    assert "Failing check on Orders file" in content
    assert "<strong>Opened</strong> by the portal" in content
    assert "2 null rows of 5." in content
    assert "Acknowledge" not in content and "Resolve incident" not in content
    assert "are told when an incident opens and resolves" in content


def test_owner_acknowledges_comments_and_resolves(client, incident, owner):
    client.force_login(owner)
    url = f"{PAGE}incidents/{incident.pk}/"
    content = _content(client, url)
    assert "Acknowledge" in content and "Resolve incident" in content and "Add comment" in content

    response = client.post(url + "acknowledge/", {"note": "On it"}, follow=True)
    assert "Incident acknowledged" in response.content.decode()
    assert "Acknowledge</button>" not in response.content.decode()
    assert client.post(url + "comment/", {"body": "Upstream fixed"}).status_code == 302

    response = client.post(url + "resolve/", {"note": ""})
    assert response.status_code == 400
    assert "note" in response.context["resolve_form"].errors
    assert "Say how the incident was resolved." in response.content.decode()

    response = client.post(url + "comment/", {"body": "   "})
    assert response.status_code == 400 and "body" in response.context["comment_form"].errors

    response = client.post(url + "resolve/", {"note": "Reloaded"}, follow=True)
    content = response.content.decode()
    assert "Incident resolved." in content
    assert [e.kind for e in incident.events.order_by("pk")] == [
        "opened",
        "acknowledged",
        "comment",
        "resolved",
    ]
    assert "Resolve incident" not in content and "data-incident-banner" not in content
    assert "Add comment" in content  # a resolved incident can still be discussed


def test_only_editors_act_on_incidents(client, incident, member, outsider):
    for user in (member, outsider):
        client.force_login(user)
        for action in ("acknowledge", "comment", "resolve"):
            url = f"{PAGE}incidents/{incident.pk}/{action}/"
            assert client.post(url, {"note": "x", "body": "x"}).status_code == 403
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.OPEN and incident.events.count() == 1


def test_incident_list_shows_open_before_resolved(client, product, incident, outsider):
    old, _ = incident_open(product=product, cause="slo", cause_key="slo:9", title="Old breach")
    Incident.objects.filter(pk=old.pk).update(
        status=IncidentStatus.RESOLVED, resolution_note="Recovered: 99.9% over 7 days."
    )
    Incident.objects.filter(pk=incident.pk).update(opened_at=timezone.now() - timedelta(days=2))
    client.force_login(outsider)
    content = _content(client, QUALITY)
    section = content[content.index('id="incidents"') :]
    assert section.index("Email set") < section.index("Old breach")
    assert "Recovered: 99.9% over 7 days." in section
    assert "No incidents" not in section


def test_trust_score_recomputed_is_what_the_page_shows(client, product, owner):
    trust_score_compute(product=product)
    client.force_login(owner)
    summary = client.get(QUALITY).context["summary"]
    assert summary.score == TrustScore.objects.get(product=product).score
    assert [c.name for c in summary.components] == [
        "quality",
        "reliability",
        "documentation",
        "support",
    ]
    assert summary.components[2].score == TrustScore.objects.get().documentation
    assert summary.components[0].evidence["note"] == "no checks yet"


# --- search results ----------------------------------------------------------------------------


def test_search_results_carry_a_trust_badge_and_an_incident_marker(
    client, domain, product, outsider
):
    quiet = ProductFactory(domain=domain, name="Returns", slug="returns")
    TrustScore.objects.create(
        product=product,
        computed_at=timezone.now(),
        score=42.4,
        quality=0,
        reliability=100,
        documentation=60,
        support=80,
        evidence={},
    )
    incident_open(product=product, cause="slo", cause_key="slo:m", title="Late data")
    client.force_login(outsider)
    content = _content(client, "/")
    results = {
        name: content[content.index(f">{name}</a></h3>") :][:1500] for name in ("Orders", "Returns")
    }
    assert "Trust score 42 out of 100 (poor)" in results["Orders"]
    assert "trust-poor" in results["Orders"]
    assert "Incident open</a>" in results["Orders"]
    assert 'href="/products/sales/orders/quality/#incidents"' in results["Orders"]
    assert "Trust score: not computed yet" in results["Returns"]
    assert "Incident open" not in results["Returns"]
    assert quiet.slug in content
