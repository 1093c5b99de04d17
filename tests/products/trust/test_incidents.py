"""Incidents: one per cause however many runs see it, recovery resolves with a note, warn
checks never open one, an unreachable source opens an availability incident; owners and
stewards acknowledge, comment and resolve. Runs are real: checks execute on Parquet files
in portal storage."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from products.choices import (
    CheckKind,
    CheckRunStatus,
    IncidentCause,
    IncidentEventKind,
    IncidentStatus,
    Severity,
)
from products.models import Incident, PortObservation
from products.trust.services.checks import check_create, check_delete
from products.trust.services.evidence import trust_after_observation
from products.trust.services.incidents import (
    MAX_COMMENT_LENGTH,
    incident_acknowledge,
    incident_comment,
    incident_open,
    incident_resolve,
    incidents_for_product,
    products_with_open_incidents,
)
from products.trust.services.monitors import port_observe
from tests.factories import ProductFactory
from tests.products.trust.helpers import CLEAN, DIRTY, customers_port, run_checks, write_emails


@pytest.fixture
def port(media_root, domain):
    return customers_port(media_root, domain)


@pytest.fixture
def email_check(port, owner):
    return check_create(
        port=port, by=owner, name="email not null", kind=CheckKind.NOT_NULL, column="email"
    )


def test_a_failing_error_check_opens_one_incident_however_many_runs(port, email_check, owner):
    for _ in range(3):
        run_checks(port, owner)

    incident = Incident.objects.get()
    assert incident.title == "Check 'email not null' failing on Customers"
    assert incident.cause == IncidentCause.CHECK
    assert incident.cause_key == f"check:{email_check.pk}"
    assert incident.severity == Severity.ERROR
    assert incident.status == IncidentStatus.OPEN
    assert incident.port == port
    events = list(incident.events.values_list("kind", flat=True))
    assert events == [IncidentEventKind.OPENED]
    assert "2 null rows of 10" in incident.events.get().body


def test_a_later_pass_resolves_it_with_a_note(media_root, port, email_check, owner):
    run_checks(port, owner)
    write_emails(media_root, port.file_path.split("/")[-1], CLEAN)
    run_checks(port, owner)

    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolution_note == "Recovered: 0 null rows of 10 (0%)."
    assert incident.resolved_at is not None
    assert list(incident.events.values_list("kind", flat=True)) == [
        IncidentEventKind.OPENED,
        IncidentEventKind.RESOLVED,
    ]
    # Passing again changes nothing; failing again opens a new incident for the cause.
    run_checks(port, owner)
    assert Incident.objects.count() == 1
    write_emails(media_root, port.file_path.split("/")[-1], DIRTY)
    run_checks(port, owner)
    assert Incident.objects.count() == 2
    assert Incident.objects.filter(status=IncidentStatus.OPEN).count() == 1


def test_warn_failures_never_open_an_incident(port, owner):
    check_create(
        port=port,
        by=owner,
        name="email not null",
        kind=CheckKind.NOT_NULL,
        column="email",
        severity=Severity.WARN,
    )
    run_checks(port, owner)
    run_checks(port, owner)
    assert not Incident.objects.exists()


def test_a_check_that_cannot_be_evaluated_neither_opens_nor_resolves(port, email_check, owner):
    run_checks(port, owner)
    check_create(port=port, by=owner, name="ghost", kind=CheckKind.NOT_NULL, column="ghost")
    run = run_checks(port, owner)
    assert run.errored == 1
    assert list(Incident.objects.values_list("cause_key", "status")) == [
        (f"check:{email_check.pk}", IncidentStatus.OPEN)
    ]


def test_deleting_the_check_resolves_its_incident_at_the_next_run(port, email_check, owner):
    run_checks(port, owner)
    check_create(port=port, by=owner, name="rows", kind=CheckKind.ROW_COUNT, params={"min": 1})
    check_delete(check=email_check, by=owner)
    run_checks(port, owner)
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolution_note == "Resolved: the check was deleted."


def test_an_unreachable_source_opens_an_availability_incident(media_root, domain, owner):
    port = customers_port(media_root, domain, emails=None, name="late.parquet")
    check_create(port=port, by=owner, name="rows", kind=CheckKind.ROW_COUNT, params={"min": 1})
    first = run_checks(port, owner)
    run_checks(port, owner)

    assert first.status == CheckRunStatus.ERROR
    incident = Incident.objects.get()
    assert incident.cause == IncidentCause.AVAILABILITY
    assert incident.cause_key == f"availability:{port.pk}"
    assert incident.title == "Port 'customers' of Customers is unreachable"
    assert "does not exist" in incident.detail
    assert incident.events.get().body == "The port's file could not be read."

    # The file arrives: the next completed run resolves it.
    write_emails(media_root, "late.parquet", CLEAN)
    assert run_checks(port, owner).status == CheckRunStatus.DONE
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolution_note == "Recovered: the source is reachable again."


def test_monitor_observations_open_and_resolve_availability_incidents(media_root, domain):
    port = customers_port(media_root, domain, emails=None, name="monitored.parquet")
    trust_after_observation(observation=port_observe(port=port))
    trust_after_observation(observation=port_observe(port=port))
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.OPEN

    write_emails(media_root, "monitored.parquet", CLEAN)
    observation = port_observe(port=port)
    assert observation.available
    trust_after_observation(observation=observation)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED


def test_old_evidence_does_not_overrule_newer(media_root, domain):
    port = customers_port(media_root, domain, emails=None, name="stale.parquet")
    old = PortObservation.objects.create(
        port=port, observed_at=timezone.now() - timedelta(minutes=5), available=False
    )
    PortObservation.objects.create(port=port, observed_at=timezone.now(), available=True)
    trust_after_observation(observation=old)
    assert not Incident.objects.exists()


@pytest.mark.parametrize("who", ["owner", "steward", "admin_user"])
def test_editors_acknowledge_comment_and_resolve(request, port, email_check, owner, who):
    user = request.getfixturevalue(who)
    run_checks(port, owner)
    incident = Incident.objects.get()

    incident_acknowledge(incident=incident, by=user, note="Looking at the loader.")
    assert incident.status == IncidentStatus.ACKNOWLEDGED
    assert incident.acknowledged_by == user and incident.acknowledged_at is not None
    incident_comment(incident=incident, by=user, body="The CRM export dropped emails.")
    incident_resolve(incident=incident, by=user, note="Re-exported from the CRM.")

    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolution_note == "Re-exported from the CRM."
    timeline = list(incident.events.values_list("kind", "author__username", "body"))
    assert timeline == [
        (IncidentEventKind.OPENED, None, timeline[0][2]),
        (IncidentEventKind.ACKNOWLEDGED, user.username, "Looking at the loader."),
        (IncidentEventKind.COMMENT, user.username, "The CRM export dropped emails."),
        (IncidentEventKind.RESOLVED, user.username, "Re-exported from the CRM."),
    ]


@pytest.mark.parametrize("who", ["member", "outsider"])
def test_others_may_not_acknowledge_comment_or_resolve(request, port, email_check, owner, who):
    user = request.getfixturevalue(who)
    run_checks(port, owner)
    incident = Incident.objects.get()
    with pytest.raises(PermissionDenied):
        incident_acknowledge(incident=incident, by=user)
    with pytest.raises(PermissionDenied):
        incident_comment(incident=incident, by=user, body="hello")
    with pytest.raises(PermissionDenied):
        incident_resolve(incident=incident, by=user, note="fixed")
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.OPEN
    assert incident.events.count() == 1


def test_comments_must_say_something_and_not_too_much(port, email_check, owner):
    run_checks(port, owner)
    incident = Incident.objects.get()
    for body in ("", "   ", "x" * (MAX_COMMENT_LENGTH + 1)):
        with pytest.raises(ValidationError) as error:
            incident_comment(incident=incident, by=owner, body=body)
        assert "body" in error.value.message_dict
    incident_comment(incident=incident, by=owner, body="x" * MAX_COMMENT_LENGTH)
    assert incident.events.filter(kind=IncidentEventKind.COMMENT).count() == 1


def test_state_changes_happen_once(port, email_check, owner):
    run_checks(port, owner)
    incident = Incident.objects.get()
    incident_acknowledge(incident=incident, by=owner)
    incident_acknowledge(incident=incident, by=owner)  # already acknowledged: no change
    assert incident.events.filter(kind=IncidentEventKind.ACKNOWLEDGED).count() == 1
    with pytest.raises(ValidationError) as error:
        incident_resolve(incident=incident, by=owner, note="")
    assert "note" in error.value.message_dict
    incident_resolve(incident=incident, by=owner, note="Fixed upstream.")
    with pytest.raises(ValidationError):
        incident_resolve(incident=incident, by=owner, note="Again.")
    with pytest.raises(ValidationError):
        incident_acknowledge(incident=incident, by=owner)
    assert incident.events.filter(kind=IncidentEventKind.RESOLVED).count() == 1


def test_selectors_filter_by_status_and_mark_products(media_root, domain, owner):
    port = customers_port(media_root, domain)
    quiet = ProductFactory(domain=domain)
    check_create(port=port, by=owner, name="email", kind=CheckKind.NOT_NULL, column="email")
    check_create(port=port, by=owner, name="few", kind=CheckKind.ROW_COUNT, params={"max": 5})
    run_checks(port, owner)
    first, second = incidents_for_product(product=port.product).order_by("pk")
    incident_resolve(incident=first, by=owner, note="Done.")

    product = port.product
    assert list(incidents_for_product(product=product, status="unresolved")) == [second]
    assert list(incidents_for_product(product=product, status=IncidentStatus.RESOLVED)) == [first]
    assert incidents_for_product(product=product).count() == 2
    assert products_with_open_incidents([product.pk, quiet.pk]) == {product.pk}
    incident_resolve(incident=second, by=owner, note="Done too.")
    assert products_with_open_incidents([product.pk, quiet.pk]) == set()


@pytest.mark.django_db(transaction=True)
def test_two_openers_racing_get_one_incident(postgres, domain):
    """A second opener that passed the "is one open?" look-up before the first committed
    hits the partial unique constraint and gets the winner's incident."""
    product = ProductFactory(domain=domain)
    key = "check:999"
    inside = threading.Event()
    release = threading.Event()

    def first_opener():
        from django.db import connection as thread_connection
        from django.db import transaction

        try:
            with transaction.atomic():
                incident_open(product=product, cause=IncidentCause.CHECK, cause_key=key, title="A")
                inside.set()
                release.wait(10)
        finally:
            thread_connection.close()

    thread = threading.Thread(target=first_opener)
    thread.start()
    assert inside.wait(10)
    # The first insert is not committed: this opener sees nothing open and inserts too,
    # blocking on the unique index until the first commits, then fails and joins it.
    threading.Timer(0.5, release.set).start()
    incident, opened = incident_open(
        product=product, cause=IncidentCause.CHECK, cause_key=key, title="B"
    )
    thread.join(10)
    assert not opened
    assert incident.title == "A"
    assert Incident.objects.filter(cause_key=key).count() == 1
    assert connection.vendor == "postgresql"
