"""SLOs: exact attainment and error budget from hand-built observations and check
results, rolling windows, validation, and breach incidents that recovery resolves."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
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
from products.models import Check, CheckResult, CheckRun, Incident, PortObservation
from products.trust.services.evidence import trust_after_observation
from products.trust.services.slo_measures import product_slo_report, slo_attainment
from products.trust.services.slos import (
    slo_create,
    slo_delete,
    slo_evaluate,
    slo_update,
)
from tests.factories import OutputPortFactory, ProductFactory

NOW = timezone.now()


@pytest.fixture
def port(product):
    return OutputPortFactory(product=product)


def observe(port, *, ok: int, down: int = 0, ago=timedelta(hours=1), lag_hours=None):
    """`ok` reachable and `down` unreachable probes, `ago` before NOW."""
    lag = None if lag_hours is None else lag_hours * 3600
    PortObservation.objects.bulk_create(
        [
            PortObservation(
                port=port, observed_at=NOW - ago, available=True, freshness_lag_seconds=lag
            )
            for _ in range(ok)
        ]
        + [
            PortObservation(port=port, observed_at=NOW - ago, available=False, error="down")
            for _ in range(down)
        ]
    )


def results(port, *, passed: int, failed: int = 0, errored: int = 0, ago=timedelta(hours=1)):
    check = Check.objects.create(
        port=port, name=f"c{Check.objects.count()}", kind=CheckKind.ROW_COUNT, params={"min": 1}
    )
    run = CheckRun.objects.create(port=port, status=CheckRunStatus.DONE)
    outcomes = (
        [CheckOutcome.PASS] * passed + [CheckOutcome.FAIL] * failed + [CheckOutcome.ERROR] * errored
    )
    CheckResult.objects.bulk_create(
        [
            CheckResult(
                run=run,
                quality_check=check,
                port=port,
                outcome=outcome,
                severity=Severity.ERROR,
                evaluated_at=NOW - ago,
            )
            for outcome in outcomes
        ]
    )


def test_availability_96_of_100_probes_against_99_percent(product, port, owner):
    observe(port, ok=96, down=4)
    slo = slo_create(product=product, by=owner, kind=SLOKind.AVAILABILITY, target_percent=99)

    att = slo_attainment(slo=slo, days=7, now=NOW)
    assert (att.good, att.total) == (96, 100)
    assert att.attainment_percent == 96.0
    assert att.target_percent == 99.0
    assert att.met is False
    # 1 bad probe allowed, 4 seen: 400% of the budget spent, none left.
    assert att.budget_spent_percent == 400.0
    assert att.error_budget_remaining_percent == 0.0


def test_a_budget_partly_spent(product, port, owner):
    observe(port, ok=199, down=1)
    slo = slo_create(product=product, by=owner, kind=SLOKind.AVAILABILITY, target_percent=99)
    att = slo_attainment(slo=slo, days=7, now=NOW)
    assert att.attainment_percent == 99.5
    assert att.met is True
    # 2 bad allowed, 1 seen.
    assert att.budget_spent_percent == 50.0
    assert att.error_budget_remaining_percent == 50.0


def test_windows_roll(product, port, owner):
    observe(port, ok=10, ago=timedelta(days=2))
    observe(port, ok=5, down=5, ago=timedelta(days=10))
    observe(port, ok=3, ago=timedelta(days=40))  # outside both windows
    slo = slo_create(product=product, by=owner, kind=SLOKind.AVAILABILITY, target_percent=90)

    week = slo_attainment(slo=slo, days=7, now=NOW)
    month = slo_attainment(slo=slo, days=30, now=NOW)
    assert (week.good, week.total, week.attainment_percent) == (10, 10, 100.0)
    assert (month.good, month.total, month.attainment_percent) == (15, 20, 75.0)
    assert week.budget_spent_percent == 0.0 and week.error_budget_remaining_percent == 100.0


def test_other_products_do_not_count(product, port, owner, domain):
    observe(OutputPortFactory(product=ProductFactory(domain=domain)), ok=0, down=50)
    observe(port, ok=4)
    slo = slo_create(product=product, by=owner, kind=SLOKind.AVAILABILITY, target_percent=99)
    assert slo_attainment(slo=slo, days=7, now=NOW).total == 4


def test_freshness_counts_reachable_observations_with_a_known_lag(product, port, owner):
    observe(port, ok=6, lag_hours=2)  # fresh
    observe(port, ok=2, lag_hours=30)  # stale
    observe(port, ok=3)  # reachable, lag unknown: left out
    observe(port, ok=0, down=5)  # unreachable: left out
    slo = slo_create(
        product=product, by=owner, kind=SLOKind.FRESHNESS, target_percent=90, threshold_hours=24
    )
    att = slo_attainment(slo=slo, days=7, now=NOW)
    assert (att.good, att.total, att.attainment_percent) == (6, 8, 75.0)
    # 10% of 8 = 0.8 bad allowed, 2 seen: 250% spent.
    assert att.budget_spent_percent == 250.0
    assert att.error_budget_remaining_percent == 0.0


def test_quality_counts_passes_among_passes_and_failures(product, port, owner):
    results(port, passed=19, failed=1, errored=7)
    slo = slo_create(product=product, by=owner, kind=SLOKind.QUALITY, target_percent=95)
    att = slo_attainment(slo=slo, days=7, now=NOW)
    assert (att.good, att.total, att.attainment_percent) == (19, 20, 95.0)
    assert att.met is True
    assert att.budget_spent_percent == 100.0
    assert att.error_budget_remaining_percent == 0.0


def test_no_data_means_unknown_with_the_budget_whole(product, owner):
    slo = slo_create(product=product, by=owner, kind=SLOKind.QUALITY, target_percent=95)
    att = slo_attainment(slo=slo, days=30, now=NOW)
    assert att.total == 0
    assert att.attainment_percent is None and att.met is None
    assert att.error_budget_remaining_percent == 100.0 and att.budget_spent_percent == 0.0


def test_a_100_percent_target_has_no_budget(product, port, owner):
    observe(port, ok=999, down=1)
    slo = slo_create(product=product, by=owner, kind=SLOKind.AVAILABILITY, target_percent=100)
    att = slo_attainment(slo=slo, days=7, now=NOW)
    assert att.met is False
    assert att.error_budget_remaining_percent == 0.0


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"kind": SLOKind.AVAILABILITY, "target_percent": 0}, "target_percent"),
        ({"kind": SLOKind.AVAILABILITY, "target_percent": 100.1}, "target_percent"),
        ({"kind": SLOKind.AVAILABILITY, "target_percent": "lots"}, "target_percent"),
        ({"kind": SLOKind.FRESHNESS, "target_percent": 99}, "threshold_hours"),
        (
            {"kind": SLOKind.FRESHNESS, "target_percent": 99, "threshold_hours": 0},
            "threshold_hours",
        ),
        ({"kind": "uptime", "target_percent": 99}, "kind"),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(product, owner, fields, field):
    with pytest.raises(ValidationError) as error:
        slo_create(product=product, by=owner, **fields)
    assert field in error.value.message_dict


def test_one_slo_per_kind(product, owner):
    slo_create(product=product, by=owner, kind=SLOKind.QUALITY, target_percent=95)
    with pytest.raises(ValidationError) as error:
        slo_create(product=product, by=owner, kind=SLOKind.QUALITY, target_percent=90)
    assert "kind" in error.value.message_dict


@pytest.mark.parametrize("who", ["member", "outsider"])
def test_only_editors_define_slos(request, product, owner, who):
    user = request.getfixturevalue(who)
    with pytest.raises(PermissionDenied):
        slo_create(product=product, by=user, kind=SLOKind.QUALITY, target_percent=95)
    slo = slo_create(product=product, by=owner, kind=SLOKind.QUALITY, target_percent=95)
    with pytest.raises(PermissionDenied):
        slo_update(slo=slo, by=user, target_percent=90)
    with pytest.raises(PermissionDenied):
        slo_delete(slo=slo, by=user)


def test_update_validates_and_changes(product, owner, steward):
    slo = slo_create(product=product, by=owner, kind=SLOKind.AVAILABILITY, target_percent=99)
    slo_update(slo=slo, by=steward, target_percent=99.5, description="Business hours")
    slo.refresh_from_db()
    assert (slo.target_percent, slo.description) == (99.5, "Business hours")
    with pytest.raises(ValidationError) as error:
        slo_update(slo=slo, by=steward, target_percent=-1)
    assert "target_percent" in error.value.message_dict
    with pytest.raises(ValidationError):
        slo_update(slo=slo, by=steward, product=None)


def test_a_breach_opens_an_incident_and_recovery_resolves_it(product, port, owner):
    observe(port, ok=96, down=4)
    slo = slo_create(product=product, by=owner, kind=SLOKind.AVAILABILITY, target_percent=99)

    incident = Incident.objects.get(cause=IncidentCause.SLO)
    assert incident.cause_key == f"slo:{slo.pk}"
    assert incident.title == "Availability SLO breached on Orders: 96.00% over 7 days (target 99%)"
    assert incident.status == IncidentStatus.OPEN
    slo_evaluate(slo=slo)  # still breached: the same incident
    assert Incident.objects.filter(cause=IncidentCause.SLO).count() == 1

    # 300 good probes later (and one more observed now), 397 of 401 ok: 99.0025%.
    observe(port, ok=300, ago=timedelta(minutes=1))
    trust_after_observation(
        observation=PortObservation.objects.create(port=port, observed_at=NOW, available=True)
    )
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolution_note == "Recovered: 99.00% over 7 days meets the target of 99%."


def test_deleting_an_slo_resolves_its_breach(product, port, owner):
    observe(port, ok=1, down=1)
    slo = slo_create(product=product, by=owner, kind=SLOKind.AVAILABILITY, target_percent=99)
    slo_delete(slo=slo, by=owner)
    incident = Incident.objects.get(cause=IncidentCause.SLO)
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolution_note == "Resolved: the SLO was deleted."


def test_report_gives_7_and_30_day_attainment_with_one_query_per_slo(
    product, port, owner, django_assert_num_queries
):
    observe(port, ok=9, down=1, ago=timedelta(days=1), lag_hours=1)
    observe(port, ok=0, down=10, ago=timedelta(days=20))
    results(port, passed=3, failed=1)
    slo_create(product=product, by=owner, kind=SLOKind.AVAILABILITY, target_percent=90)
    slo_create(product=product, by=owner, kind=SLOKind.QUALITY, target_percent=50)
    slo_create(
        product=product, by=owner, kind=SLOKind.FRESHNESS, target_percent=90, threshold_hours=2
    )

    with django_assert_num_queries(4):  # the SLOs, then one aggregate each
        report = product_slo_report(product=product, now=NOW)
    by_kind = {item.slo.kind: item for item in report}
    assert by_kind[SLOKind.AVAILABILITY].attainment_7d.attainment_percent == 90.0
    assert by_kind[SLOKind.AVAILABILITY].attainment_30d.attainment_percent == 45.0
    assert by_kind[SLOKind.QUALITY].attainment_30d.attainment_percent == 75.0
    assert by_kind[SLOKind.FRESHNESS].attainment_7d.attainment_percent == 100.0
    as_dict = by_kind[SLOKind.AVAILABILITY].as_dict()
    assert as_dict["windows"]["30d"]["good"] == 9 and as_dict["windows"]["30d"]["total"] == 20
