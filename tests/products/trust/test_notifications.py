"""Incident notifications: the domain's owners and stewards get one email, and the domain's
webhook one JSON POST, per state change (opened, resolved), even when the notify task is
delivered twice. The webhook receiver is a real HTTP server on 127.0.0.1; email uses
Django's locmem backend (mail.outbox)."""

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.core import mail

from products.choices import CheckKind, IncidentEventKind, IncidentStatus
from products.models import Incident, IncidentEvent
from products.trust.notifications import webhook_post
from products.trust.services.checks import check_create, check_run_request
from products.trust.services.incidents import (
    incident_acknowledge,
    incident_comment,
    incident_resolve,
)
from products.trust.tasks import incident_notify
from tests.conftest import wait_for
from tests.products.trust.helpers import CLEAN, customers_port, run_checks, write_emails


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 that records each POST and answers `status`."""
    state = SimpleNamespace(received=[], status=200)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(
                {
                    "path": self.path,
                    "content_type": self.headers["Content-Type"],
                    "json": json.loads(body),
                }
            )
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hooks/incidents"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def port(media_root, domain, receiver, owner, steward, member):
    domain.incident_webhook_url = receiver.url
    domain.save()
    port = customers_port(media_root, domain)
    check_create(
        port=port, by=owner, name="email not null", kind=CheckKind.NOT_NULL, column="email"
    )
    return port


def _events(kind):
    return IncidentEvent.objects.filter(kind=kind)


def test_opening_and_recovery_each_notify_once_even_if_delivered_twice(
    port, receiver, owner, steward, media_root, eager_tasks, django_capture_on_commit_callbacks
):
    # As in production: the run's task executes it, the incident it opens is notified
    # after commit by the incident_notify task.
    with django_capture_on_commit_callbacks(execute=True):
        check_run_request(port=port, by=owner)
    incident = Incident.objects.get()
    opened = _events(IncidentEventKind.OPENED).get()
    assert opened.notified_at is not None

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert sorted(email.to) == ["owner@example.com", "steward@example.com"]  # not the member
    assert email.subject == (
        f"[{port.product.key}] Incident opened: Check 'email not null' failing on Customers"
    )
    assert "2 null rows of 10" in email.body
    assert f"#incident-{incident.pk}" in email.body

    assert len(receiver.received) == 1
    post = receiver.received[0]
    assert post["path"] == "/hooks/incidents"
    assert post["content_type"] == "application/json"
    payload = post["json"]
    assert payload["event"] == "incident.opened"
    assert "Incident opened" in payload["text"]
    assert "Check 'email not null' failing on Customers" in payload["text"]
    assert payload["incident"]["id"] == incident.pk
    assert payload["incident"]["cause_key"] == incident.cause_key
    assert payload["incident"]["status"] == IncidentStatus.OPEN
    assert payload["product"]["key"] == port.product.key
    assert payload["domain"]["slug"] == "sales"

    # The broker delivers the task again: nothing more is sent.
    incident_notify(opened.pk)
    incident_notify.delay(opened.pk)
    assert len(mail.outbox) == 1 and len(receiver.received) == 1

    # Two more failing runs: still the same incident, no new message.
    with django_capture_on_commit_callbacks(execute=True):
        run_checks(port, owner)
        run_checks(port, owner)
    assert len(mail.outbox) == 1 and len(receiver.received) == 1

    # Recovery: one "resolved" message each way.
    write_emails(media_root, port.file_path.split("/")[-1], CLEAN)
    with django_capture_on_commit_callbacks(execute=True):
        run_checks(port, owner)
    resolved = _events(IncidentEventKind.RESOLVED).get()
    incident_notify(resolved.pk)
    assert len(mail.outbox) == 2 and len(receiver.received) == 2
    assert mail.outbox[1].subject.startswith(f"[{port.product.key}] Incident resolved:")
    assert receiver.received[1]["json"]["event"] == "incident.resolved"
    assert receiver.received[1]["json"]["incident"]["resolution_note"] == (
        "Recovered: 0 null rows of 10 (0%)."
    )
    assert "Recovered: 0 null rows of 10 (0%)." in receiver.received[1]["json"]["text"]


def test_acknowledging_and_commenting_notify_nobody_resolving_does(
    port, receiver, owner, django_capture_on_commit_callbacks
):
    run_checks(port, owner)
    incident = Incident.objects.get()

    with django_capture_on_commit_callbacks() as quiet:
        incident_acknowledge(incident=incident, by=owner)
        incident_comment(incident=incident, by=owner, body="On it.")
    assert quiet == []
    for event in incident.events.exclude(kind=IncidentEventKind.OPENED):
        incident_notify(event.pk)  # even if someone enqueued one: not a notified kind
    assert mail.outbox == [] and receiver.received == []

    with django_capture_on_commit_callbacks() as resolving:
        incident_resolve(incident=incident, by=owner, note="Re-exported.")
    assert len(resolving) == 1
    resolved = _events(IncidentEventKind.RESOLVED).get()
    incident_notify(resolved.pk)
    incident_notify(resolved.pk)
    assert len(mail.outbox) == 1 and len(receiver.received) == 1
    assert receiver.received[0]["json"]["incident"]["resolution_note"] == "Re-exported."


def test_a_failing_webhook_is_logged_and_the_email_still_goes(port, receiver, owner, caplog):
    receiver.status = 500
    run_checks(port, owner)
    opened = _events(IncidentEventKind.OPENED).get()
    with caplog.at_level(logging.WARNING, logger="products.trust.notifications"):
        incident_notify(opened.pk)
    assert len(receiver.received) == 1  # tried once, not retried into a storm
    assert len(mail.outbox) == 1
    assert "answered 500" in caplog.text or "HTTP Error 500" in caplog.text
    incident_notify(opened.pk)
    assert len(receiver.received) == 1


def test_an_unreachable_webhook_does_not_raise(port, owner, domain, caplog):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    domain.incident_webhook_url = f"http://127.0.0.1:{closed}/hook"
    domain.save()
    run_checks(port, owner)
    with caplog.at_level(logging.WARNING, logger="products.trust.notifications"):
        incident_notify(_events(IncidentEventKind.OPENED).get().pk)
    assert "webhook POST to 127.0.0.1" in caplog.text
    assert len(mail.outbox) == 1


def test_without_a_webhook_only_email(port, receiver, owner, domain):
    domain.incident_webhook_url = ""
    domain.save()
    run_checks(port, owner)
    incident_notify(_events(IncidentEventKind.OPENED).get().pk)
    assert len(mail.outbox) == 1 and receiver.received == []


def test_only_http_webhooks_are_called(tmp_path):
    target = tmp_path / "secret.txt"
    target.write_text("secret")
    assert webhook_post(url=f"file://{target}", payload={"text": "x"}) is False


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_posts_once(celery_worker, port, receiver, owner):
    """Run requested on the page -> worker runs the checks -> the incident opens -> the
    worker's incident_notify POSTs to the receiver; a redelivery posts nothing."""
    check_run_request(port=port, by=owner)
    wait_for(lambda: receiver.received, timeout=60, message="the worker sent no webhook")
    opened = _events(IncidentEventKind.OPENED).get()
    assert receiver.received[0]["json"]["incident"]["id"] == opened.incident_id
    incident_notify.delay(opened.pk)  # redelivered
    # A marker task after the redelivery: once its webhook has arrived, the worker has
    # processed the redelivery too (one worker, solo pool, tasks in order).
    incident = Incident.objects.get()
    incident_resolve(incident=incident, by=owner, note="Fixed.")
    wait_for(lambda: len(receiver.received) >= 2, timeout=60, message="no resolved webhook")
    assert [post["json"]["event"] for post in receiver.received] == [
        "incident.opened",
        "incident.resolved",
    ]
