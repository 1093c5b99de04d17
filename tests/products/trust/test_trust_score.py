"""The trust score: exact components for a hand-built product, the evidence behind each,
snapshots after runs and observations, history order, and the latest score of many
products in one query (search badges)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from products.choices import (
    CheckKind,
    CheckOutcome,
    CheckRunStatus,
    IncidentCause,
    IncidentStatus,
    Severity,
    SLOKind,
)
from products.models import (
    Check,
    CheckResult,
    CheckRun,
    Incident,
    PortObservation,
    ServiceLevelObjective,
    TrustScore,
)
from products.trust.services.checks import check_create
from products.trust.services.evidence import trust_after_observation
from products.trust.services.trust_score import (
    trust_score_compute,
    trust_score_history,
    trust_score_latest,
    trust_scores_latest_for,
)
from tests.factories import ColumnFactory, OutputPortFactory, ProductFactory
from tests.products.trust.helpers import customers_port, run_checks

NOW = timezone.now()


def _check(port, name, severity=Severity.ERROR, enabled=True):
    return Check.objects.create(
        port=port,
        name=name,
        kind=CheckKind.ROW_COUNT,
        params={"min": 1},
        severity=severity,
        enabled=enabled,
    )


def _result(run, check, outcome, ago=timedelta(hours=1)):
    return CheckResult.objects.create(
        run=run,
        quality_check=check,
        port=run.port,
        outcome=outcome,
        severity=check.severity,
        evaluated_at=NOW - ago,
    )


@pytest.fixture
def hand_built(domain, owner):
    """A product whose every component is known:

    quality: latest results e1 pass (2), e2 fail (2), e3 pass (2; an older run failed),
    w1 pass (1), w3 error (1, counts as failing); w2 never ran, `off` is disabled:
    5 of 8 points = 62.5.
    reliability: availability 96 of 100 probes against 99% -> 96.97; quality 3 of 6
    evaluations against 50% -> 100 (capped); mean 98.48 -> 98.5.
    documentation: description 30 + owner 20 + 3 of 4 columns described 30 + no contract
    0 = 80.
    support: two unresolved incidents (one resolved is ignored), the oldest 3 days 5 hours
    old: 100 - 40 - 6 = 54.
    score: 0.35 * 62.5 + 0.25 * 98.5 + 0.20 * 80 + 0.20 * 54 = 73.3."""
    product = ProductFactory(domain=domain, description="One row per order.", owners=[owner])
    port = OutputPortFactory(product=product)
    for i, described in enumerate([True, True, True, False]):
        ColumnFactory(port=port, name=f"c{i}", description="A column." if described else "")

    checks = {
        "e1": _check(port, "e1"),
        "e2": _check(port, "e2"),
        "e3": _check(port, "e3"),
        "w1": _check(port, "w1", Severity.WARN),
        "w2": _check(port, "w2", Severity.WARN),
        "w3": _check(port, "w3", Severity.WARN),
        "off": _check(port, "off", enabled=False),
    }
    older = CheckRun.objects.create(port=port, status=CheckRunStatus.DONE)
    _result(older, checks["e3"], CheckOutcome.FAIL, ago=timedelta(hours=2))
    run = CheckRun.objects.create(port=port, status=CheckRunStatus.DONE)
    for name, outcome in [
        ("e1", CheckOutcome.PASS),
        ("e2", CheckOutcome.FAIL),
        ("e3", CheckOutcome.PASS),
        ("w1", CheckOutcome.PASS),
        ("w3", CheckOutcome.ERROR),
        ("off", CheckOutcome.FAIL),
    ]:
        _result(run, checks[name], outcome)

    PortObservation.objects.bulk_create(
        PortObservation(port=port, observed_at=NOW - timedelta(days=3), available=i < 96)
        for i in range(100)
    )
    availability = ServiceLevelObjective.objects.create(
        product=product, kind=SLOKind.AVAILABILITY, target_percent=99
    )
    quality = ServiceLevelObjective.objects.create(
        product=product, kind=SLOKind.QUALITY, target_percent=50
    )

    def incident(key, status, age):
        return Incident.objects.create(
            product=product,
            cause=IncidentCause.CHECK,
            cause_key=key,
            title=key,
            status=status,
            opened_at=NOW - age,
        )

    incidents = [
        incident("check:a", IncidentStatus.OPEN, timedelta(days=3, hours=5)),
        incident("check:b", IncidentStatus.ACKNOWLEDGED, timedelta(days=1)),
        incident("check:c", IncidentStatus.RESOLVED, timedelta(days=20)),
    ]
    return {
        "product": product,
        "checks": checks,
        "run": run,
        "slos": (availability, quality),
        "incidents": incidents,
    }


def test_components_and_score_of_a_hand_built_product(hand_built):
    score = trust_score_compute(product=hand_built["product"], now=NOW)
    assert (score.quality, score.reliability, score.documentation, score.support) == (
        62.5,
        98.5,
        80.0,
        54.0,
    )
    assert score.score == 73.3
    assert score.computed_at == NOW
    assert TrustScore.objects.get() == score


def test_the_evidence_names_everything_used(hand_built):
    evidence = trust_score_compute(product=hand_built["product"], now=NOW).evidence
    checks, run = hand_built["checks"], hand_built["run"]

    quality = evidence["quality"]
    used = {row["name"]: row for row in quality["checks"]}
    assert set(used) == {"e1", "e2", "e3", "w1", "w3"}
    assert used["e3"]["outcome"] == "pass" and used["e3"]["run_id"] == run.pk
    assert used["w3"] == {**used["w3"], "outcome": "error", "passed": False, "weight": 1}
    assert used["e2"]["id"] == checks["e2"].pk and used["e2"]["weight"] == 2
    assert quality["not_run"] == [{"id": checks["w2"].pk, "name": "w2"}]
    assert (quality["weight_passed"], quality["weight_total"]) == (5, 8)

    availability, quality_slo = hand_built["slos"]
    slos = {row["id"]: row for row in evidence["reliability"]["slos"]}
    assert slos[availability.pk]["attainment_percent"] == 96.0
    assert slos[availability.pk]["contribution"] == 96.97
    assert (slos[availability.pk]["good"], slos[availability.pk]["total"]) == (96, 100)
    assert slos[quality_slo.pk]["attainment_percent"] == 50.0
    assert slos[quality_slo.pk]["contribution"] == 100.0

    documentation = evidence["documentation"]
    assert (documentation["columns_total"], documentation["columns_described"]) == (4, 3)
    assert documentation["owners"] == 1 and documentation["description"] is True
    assert documentation["points"] == {
        "description": 30,
        "owners": 20,
        "columns": 30.0,
        "contract": 0,
    }
    assert "no contract yet" in documentation["note"]

    open_incident, acknowledged, _ = hand_built["incidents"]
    support = evidence["support"]
    assert [(row["id"], row["age_days"]) for row in support["incidents"]] == [
        (open_incident.pk, 3),
        (acknowledged.pk, 1),
    ]
    assert support["oldest_age_days"] == 3
    assert evidence["formula"]["doc"] == "docs/trust-score.md"


def test_an_empty_product_says_why_each_component_is_low(domain):
    product = ProductFactory(domain=domain, description="")
    score = trust_score_compute(product=product, now=NOW)
    assert (score.quality, score.reliability, score.documentation, score.support) == (
        0.0,
        0.0,
        0.0,
        100.0,
    )
    assert score.score == 20.0
    assert score.evidence["quality"]["note"] == "no checks yet"
    assert score.evidence["reliability"]["note"] == "no SLOs yet"
    assert score.evidence["documentation"]["note"] == "no columns yet; no contract yet"


def test_slos_without_data_and_checks_never_run(domain):
    product = ProductFactory(domain=domain)
    _check(OutputPortFactory(product=product), "never")
    ServiceLevelObjective.objects.create(
        product=product, kind=SLOKind.AVAILABILITY, target_percent=99
    )
    score = trust_score_compute(product=product, now=NOW)
    assert score.quality == 0.0 and score.reliability == 0.0
    assert score.evidence["quality"]["note"] == "no check has run yet"
    assert score.evidence["reliability"]["note"] == "no data in the last 30 days for any SLO"


def test_support_never_goes_below_zero(domain):
    product = ProductFactory(domain=domain)
    for i in range(4):
        Incident.objects.create(
            product=product,
            cause=IncidentCause.CHECK,
            cause_key=f"check:{i}",
            title="x",
            opened_at=NOW - timedelta(days=30),
        )
    assert trust_score_compute(product=product, now=NOW).support == 0.0


def test_a_check_run_records_a_snapshot_counting_the_incident_it_opened(media_root, domain, owner):
    port = customers_port(media_root, domain)
    check_create(port=port, by=owner, name="email", kind=CheckKind.NOT_NULL, column="email")
    run = run_checks(port, owner)

    score = trust_score_latest(product=port.product)
    assert score.quality == 0.0
    assert score.support == 80.0  # the incident this run opened, 0 days old
    assert score.evidence["quality"]["checks"][0]["run_id"] == run.pk
    incident = Incident.objects.get()
    assert score.evidence["support"]["incidents"][0]["id"] == incident.pk


def test_observations_record_a_snapshot_when_something_changed_or_hourly(domain):
    port = OutputPortFactory(product=ProductFactory(domain=domain))

    def observe(available, at):
        trust_after_observation(
            observation=PortObservation.objects.create(
                port=port, observed_at=at, available=available
            )
        )

    observe(True, timezone.now())  # no snapshot yet: record one
    observe(True, timezone.now())  # nothing changed, the latest is recent: none
    assert TrustScore.objects.count() == 1
    observe(False, timezone.now())  # an availability incident opens: record one
    assert TrustScore.objects.count() == 2
    assert trust_score_latest(product=port.product).support == 80.0
    TrustScore.objects.update(computed_at=timezone.now() - timedelta(hours=2))
    observe(False, timezone.now())  # still down, but the latest snapshot is old
    assert TrustScore.objects.count() == 3


def test_history_is_oldest_first_within_the_window(domain):
    product = ProductFactory(domain=domain)
    other = ProductFactory(domain=domain)
    moments = [NOW - timedelta(days=d) for d in (1, 40, 10, 0)]
    for moment in moments:
        trust_score_compute(product=product, now=moment)
    trust_score_compute(product=other, now=NOW)

    history = list(trust_score_history(product=product, days=30, now=NOW))
    assert [s.computed_at for s in history] == [moments[2], moments[0], moments[3]]
    assert trust_score_latest(product=product).computed_at == NOW
    assert len(trust_score_history(product=product, days=60, now=NOW)) == 4


def test_latest_scores_of_many_products_in_one_query(domain, django_assert_num_queries):
    a, b, c = (ProductFactory(domain=domain) for _ in range(3))
    for days in (3, 0, 2):
        trust_score_compute(product=a, now=NOW - timedelta(days=days))
    latest_b = trust_score_compute(product=b, now=NOW - timedelta(days=5))
    latest_a = trust_score_latest(product=a)

    with django_assert_num_queries(1):
        scores = trust_scores_latest_for([a.pk, b.pk, c.pk])
        assert {pid: s.pk for pid, s in scores.items()} == {a.pk: latest_a.pk, b.pk: latest_b.pk}
        assert scores[a.pk].computed_at == NOW and scores[a.pk].score == latest_a.score
    assert trust_scores_latest_for([]) == {}
