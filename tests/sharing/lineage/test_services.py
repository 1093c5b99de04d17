"""The OpenLineage sender (sharing.lineage): check runs and export runs of the outbox reach
a real HTTP endpoint (a thread on 127.0.0.1) as OpenLineage run events, in order, each
valid against the vendored spec; START and COMPLETE/FAIL share a run id; an endpoint
that is down or answers 5xx/429 loses nothing; a 4xx refusal is passed over; an invalid
event holds the sender and tells the admins; no endpoint, nothing sent and no replay."""

from __future__ import annotations

import socket
import threading

import pytest
from django.db import connection, transaction

from portal.celery import app as celery_app
from portal.core.events import event_emit
from portal.models import Event, EventCursor, Notification
from products.choices import CheckKind
from products.trust.services.checks import check_create
from sharing.exports.services.runs import export_schedule_create
from sharing.lineage.services import CURSOR_NAME, lineage_events_send
from sharing.lineage.tasks import openlineage_send
from tests.products.trust.helpers import DIRTY, customers_port, run_checks
from tests.sharing.events.positions import event_position as position
from tests.sharing.exports.helpers import orders_product

pytestmark = pytest.mark.django_db

TASK = "sharing.lineage.tasks.openlineage_send"


def check_started(product, run_id, port="orders"):
    return event_emit(
        "portal.check_run.started",
        product=product,
        data={"run_id": run_id, "port": port, "port_id": 1, "trigger": "manual"},
    )


def check_finished(product, run_id, outcome="passed", counts=(3, 0, 0), port="orders"):
    passed, failed, errored = counts
    return event_emit(
        "portal.check_run.finished",
        product=product,
        data={
            "run_id": run_id,
            "port": port,
            "port_id": 1,
            "outcome": outcome,
            "counts": {"passed": passed, "failed": failed, "errored": errored},
            "started_at": "2026-12-05T10:00:00Z",
            "finished_at": "2026-12-05T10:00:02Z",
        },
    )


def export_started(product, run_id, export_id=999_999, port=None):
    data = {"run_id": run_id, "export_id": export_id, "export": "Nightly", "format": "csv"}
    if port:
        data["port"] = port
    return event_emit("portal.export_run.started", product=product, data=data)


def export_finished(
    product, run_id, outcome="succeeded", rows=42, error="", export_id=999_999, port=None
):
    data = {
        "run_id": run_id,
        "export_id": export_id,
        "export": "Nightly",
        "format": "csv",
        "outcome": outcome,
        "rows": rows,
        "error": error,
    }
    if port:
        data["port"] = port
    return event_emit("portal.export_run.finished", product=product, data=data)


def cursor_at() -> int:
    return EventCursor.objects.get(name=CURSOR_NAME).last_event_id


def summary(body) -> tuple[str, str]:
    return body["eventType"], body["job"]["name"]


def test_runs_arrive_in_order_as_valid_run_events(product, receiver, lineage_settings, spec_errors):
    check_started(product, 7)
    event_emit("portal.product.published", product=product)  # not lineage: passed over
    check_finished(product, 7, outcome="failed", counts=(2, 1, 0))
    export_started(product, 11, port="orders")
    export_finished(product, 11, rows=42, port="orders")
    check_started(product, 8)
    check_finished(product, 8, outcome="error", counts=(0, 0, 3))
    export_started(product, 12)
    last = export_finished(product, 12, outcome="failed", rows=None, error="Disk full.")

    report = lineage_events_send()

    bodies = receiver.received
    assert [summary(body) for body in bodies] == [
        ("START", "checks.sales.orders.orders"),
        ("COMPLETE", "checks.sales.orders.orders"),  # failures found: the run completed
        ("START", "exports.sales.orders.Nightly"),
        ("COMPLETE", "exports.sales.orders.Nightly"),
        ("START", "checks.sales.orders.orders"),
        ("FAIL", "checks.sales.orders.orders"),  # the checks could not run
        ("START", "exports.sales.orders.Nightly"),
        ("FAIL", "exports.sales.orders.Nightly"),
    ]
    assert [spec_errors(body) for body in bodies] == [[]] * 8
    run_ids = [body["run"]["runId"] for body in bodies]
    assert run_ids[0] == run_ids[1] and run_ids[2] == run_ids[3]
    assert run_ids[4] == run_ids[5] and run_ids[6] == run_ids[7]
    assert len(set(run_ids)) == 4
    assert {body["job"]["namespace"] for body in bodies} == {"portal"}
    assert {body["producer"] for body in bodies} == {"https://portal.example.com"}

    check_input = bodies[1]["inputs"][0]
    assert (check_input["namespace"], check_input["name"]) == ("portal", "sales.orders.orders")
    summary_assertion = check_input["inputFacets"]["dataQualityAssertions"]["assertions"][0]
    assert summary_assertion["success"] is False
    assert summary_assertion["params"] == {"passed": 2, "failed": 1, "errored": 0}

    export_done = bodies[3]
    assert [d["name"] for d in export_done["inputs"]] == ["sales.orders.orders"]
    output = export_done["outputs"][0]
    assert output["name"] == "sales.orders.exports.Nightly"
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 42
    assert bodies[5]["run"]["facets"]["errorMessage"]["message"] == "The checks could not run."
    assert bodies[7]["run"]["facets"]["errorMessage"]["message"] == "Disk full."

    assert (report.sent, report.passed_over, report.refused) == (8, 1, 0)
    assert cursor_at() == position(last)
    # Caught up: a second run sends nothing again.
    assert lineage_events_send().sent == 0
    assert len(receiver.received) == 8


def test_endpoint_down_then_up_loses_nothing(product, receiver, lineage_settings, spec_errors):
    with socket.socket() as closed:  # a port nothing listens on once this block ends
        closed.bind(("127.0.0.1", 0))
        down_url = f"http://127.0.0.1:{closed.getsockname()[1]}/api/v1/lineage"
    lineage_settings.OPENLINEAGE_URL = down_url
    event_emit("portal.product.published", product=product)
    check_started(product, 1)
    check_finished(product, 1)

    report = lineage_events_send()
    assert report.sent == 0 and "unreachable" in report.stopped
    first_lineage = Event.objects.get(type="portal.check_run.started")
    assert cursor_at() == position(first_lineage) - 1  # passed over what came before, no further

    # Back, but overloaded: a 503, then a 429: still nothing is passed over.
    lineage_settings.OPENLINEAGE_URL = receiver.url
    receiver.statuses = [503, 429]
    assert lineage_events_send().stopped.startswith("HTTP 503")
    assert lineage_events_send().stopped.startswith("HTTP 429")
    assert receiver.received == [] and cursor_at() == position(first_lineage) - 1

    export_started(product, 5)  # emitted while the endpoint was failing
    report = lineage_events_send()
    assert [summary(body)[0] for body in receiver.received] == ["START", "COMPLETE", "START"]
    assert report.sent == 3 and not report.stopped
    assert all(spec_errors(body) == [] for body in receiver.received)


def test_a_refused_event_is_passed_over(product, receiver, lineage_settings):
    check_started(product, 1)
    check_finished(product, 1)
    receiver.statuses = [400]

    report = lineage_events_send()

    assert report.refused == 1 and report.sent == 1
    assert [summary(body)[0] for body in receiver.received] == ["COMPLETE"]
    assert cursor_at() == Event.objects.latest("position").position


def test_a_redirect_is_not_followed_and_the_event_waits(
    product, receiver, lineage_settings, monkeypatch
):
    monkeypatch.setenv("OPENLINEAGE_API_KEY", "k-123")
    check_started(product, 1)
    receiver.statuses = [302]

    report = lineage_events_send()

    assert "redirects to" in report.stopped and receiver.received == []
    assert receiver.paths == ["/api/v1/lineage"]  # the key went nowhere else
    lineage_events_send()
    assert [summary(body)[0] for body in receiver.received] == ["START"]


def test_no_endpoint_sends_nothing_and_configuring_one_does_not_replay(
    product, receiver, lineage_settings
):
    lineage_settings.OPENLINEAGE_URL = ""
    check_started(product, 1)
    check_finished(product, 1)

    report = lineage_events_send()

    assert receiver.received == [] and report.sent == 0 and report.passed_over == 2
    assert cursor_at() == Event.objects.latest("position").position

    lineage_settings.OPENLINEAGE_URL = receiver.url
    check_started(product, 2)
    lineage_events_send()
    assert [summary(body)[0] for body in receiver.received] == ["START"]


def test_an_invalid_event_holds_the_sender_until_fixed_and_admins_are_told(
    product, receiver, lineage_settings, admin_user, owner
):
    lineage_settings.OPENLINEAGE_PRODUCER = "not a URI"  # the spec wants a URI: a bug
    started = check_started(product, 1)
    check_finished(product, 1)

    first = lineage_events_send()
    lineage_events_send()  # tried again at the next beat: still held, told once

    assert receiver.received == [] and cursor_at() == position(started) - 1
    assert "producer" in first.stopped
    notices = Notification.objects.filter(title__startswith="OpenLineage sending is held")
    assert list(notices.values_list("user__username", flat=True)) == ["admin"]
    assert "producer" in notices.get().body

    lineage_settings.OPENLINEAGE_PRODUCER = "https://portal.example.com"  # the fix
    lineage_events_send()
    assert [summary(body)[0] for body in receiver.received] == ["START", "COMPLETE"]


def test_an_event_lacking_its_data_is_held_not_sent(product, receiver, lineage_settings):
    broken = event_emit(
        "portal.check_run.finished", product=product, data={"run_id": 3, "port": "p"}
    )
    check_started(product, 4)

    report = lineage_events_send()

    assert receiver.received == [] and cursor_at() == position(broken) - 1
    assert "outcome" in report.stopped


def test_the_api_key_is_sent_as_a_bearer_token(product, receiver, lineage_settings, monkeypatch):
    monkeypatch.setenv("OPENLINEAGE_API_KEY", "k-123")
    check_started(product, 1)
    lineage_events_send()
    monkeypatch.delenv("OPENLINEAGE_API_KEY")
    check_finished(product, 1)
    lineage_events_send()

    assert receiver.headers[0]["Authorization"] == "Bearer k-123"
    assert "Authorization" not in receiver.headers[1]


def test_a_real_check_run_reports_each_check_and_no_data_values(
    domain, owner, media_root, receiver, lineage_settings, spec_errors
):
    port = customers_port(media_root, domain, emails=DIRTY)
    check_create(
        port=port, by=owner, name="email not null", kind=CheckKind.NOT_NULL, column="email"
    )
    run = run_checks(port, owner)
    product = port.product
    key = f"{product.domain.slug}.{product.slug}"
    if not Event.objects.filter(type="portal.check_run.finished").exists():
        # Until check runs write their own events (the emitters' change), as they will.
        check_finished(
            product, run.pk, outcome="failed", counts=(run.passed, run.failed, 0), port=port.slug
        )

    lineage_events_send()

    body = receiver.received[-1]
    assert body["eventType"] == "COMPLETE"
    assert spec_errors(body) == []
    dataset = body["inputs"][0]
    assert dataset["name"] == f"{key}.{port.slug}"
    assertions = dataset["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert assertions[1] == {
        "assertion": "not_null",
        "name": "email not null",
        "success": False,
        "severity": "error",
        "params": {"outcome": "fail"},
        "column": "email",
    }
    text = str(body)
    assert not any(email in text for email in DIRTY if email)


def test_an_export_names_the_port_its_schedule_reads(
    domain, owner, media_root, receiver, lineage_settings
):
    product = orders_product(domain=domain, media_root=media_root)
    schedule = export_schedule_create(
        product=product, by=owner, name="Nightly", cron="0 6 * * *", format="csv"
    )
    export_started(product, 1, export_id=schedule.pk)

    lineage_events_send()

    (body,) = receiver.received
    key = f"{product.domain.slug}.{product.slug}"
    assert [d["name"] for d in body["inputs"]] == [f"{key}.{schedule.port.slug}"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_tasks")
def test_a_committed_run_event_wakes_the_sender(product, receiver, lineage_settings):
    lineage_settings.EVENT_CONSUMER_TASKS = [TASK]
    assert TASK in celery_app.tasks
    assert any(entry["task"] == TASK for entry in lineage_settings.CELERY_BEAT_SCHEDULE.values())

    with transaction.atomic():
        check_started(product, 1)
        assert receiver.received == []  # not before the commit

    assert [summary(body)[0] for body in receiver.received] == ["START"]
    assert openlineage_send()["sent"] == 0  # the beat's run finds nothing left


@pytest.mark.django_db(transaction=True)
def test_a_second_sender_leaves_while_the_first_holds_the_cursor(
    product, receiver, lineage_settings
):
    """Two workers never send the same events: the one that finds the cursor locked
    leaves it to the holder."""
    check_started(product, 1)
    EventCursor.objects.create(name=CURSOR_NAME)
    locked, release = threading.Event(), threading.Event()

    def hold_the_cursor():
        with transaction.atomic():
            EventCursor.objects.select_for_update().get(name=CURSOR_NAME)
            locked.set()
            release.wait(timeout=60)
        connection.close()

    holder = threading.Thread(target=hold_the_cursor)
    holder.start()
    try:
        assert locked.wait(timeout=60)
        report = lineage_events_send()
    finally:
        release.set()
        holder.join()

    assert report.stopped == "another run is sending" and receiver.received == []
    assert lineage_events_send().sent == 1
