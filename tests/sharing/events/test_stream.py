"""Server-Sent Events (GET /api/v1/events/stream/): id/event/data frames of the events the
person may see, resumable with Last-Event-ID, the visibility rule re-checked before each
read, a bounded number of streams per process (503 + Retry-After beyond)."""

import json
import threading

import pytest
from django.db import connection, transaction
from knox.models import AuthToken

from portal.core.events import event_emit
from products.choices import LifecycleStatus
from products.models import DomainMembership
from sharing.events.sse import SLOTS
from tests.factories import ProductFactory
from tests.sharing.events.positions import event_position as pos

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/events/stream/"


class Frames:
    """Reads a streamed response frame by frame (blank-line separated), as EventSource does."""

    def __init__(self, response):
        self.response = response
        self.chunks = iter(response.streaming_content)
        self.buffer = ""

    def frame(self) -> dict | None:
        """The next frame as {field: value} (comments under "comment"); None at the end."""
        while "\n\n" not in self.buffer:
            chunk = next(self.chunks, None)
            if chunk is None:
                return None
            self.buffer += chunk.decode()
        text, self.buffer = self.buffer.split("\n\n", 1)
        fields: dict = {}
        for line in text.split("\n"):
            if line.startswith(":"):
                fields.setdefault("comment", []).append(line[1:].strip())
            else:
                name, _, value = line.partition(": ")
                fields[name] = value
        return fields

    def event(self) -> dict | None:
        """The next event frame (skipping comments and the retry hint); None at the end."""
        while True:
            fields = self.frame()
            if fields is None or "id" in fields:
                return fields

    def close(self):
        self.response.close()


@pytest.fixture
def stream(client_as):
    opened = []

    def open_stream(user, params=None, **headers):
        params = {"after": "0", **(params or {})}
        response = client_as(user).get(URL, params, HTTP_ACCEPT="text/event-stream", **headers)
        if response.status_code != 200:
            return response
        frames = Frames(response)
        opened.append(frames)
        return frames

    yield open_stream
    for frames in opened:
        frames.close()


def test_frames_carry_the_sequence_the_type_and_the_envelope(stream, product, owner):
    first = event_emit("portal.product.published", product=product, data={"version": "1.0.0"})
    frames = stream(owner)
    assert frames.response["Content-Type"].startswith("text/event-stream")
    assert frames.frame()["retry"] == "3000"
    frame = frames.event()
    assert frame["id"] == str(pos(first))
    assert frame["event"] == "portal.product.published"
    envelope = json.loads(frame["data"])
    assert envelope["id"] == str(first.event_id) and envelope["subject"] == "sales.orders"
    assert envelope["data"] == {"version": "1.0.0"}
    # An event committed while the stream is open arrives on it.
    later = event_emit("portal.incident.opened", product=product)
    assert frames.event()["id"] == str(pos(later))


def test_without_a_cursor_the_stream_starts_at_the_newest_event(client_as, product, owner):
    event_emit("portal.product.published", product=product)
    response = client_as(owner).get(URL, HTTP_ACCEPT="text/event-stream")
    frames = Frames(response)
    try:
        later = event_emit("portal.incident.opened", product=product)
        assert frames.event()["id"] == str(pos(later))
    finally:
        frames.close()


def test_a_client_resumes_after_last_event_id_with_the_replays_filters(stream, product, owner):
    events = [
        event_emit("portal.check_run.started", product=product),
        event_emit("portal.product.version_changed", product=product),
        event_emit("portal.check_run.finished", product=product),
        event_emit("portal.check_run.started", product=product),
    ]
    frames = stream(
        owner,
        {"type": "portal.check_run.*", "product": "sales.orders", "after": "0"},
        HTTP_LAST_EVENT_ID=str(pos(events[0])),
    )
    expected = [str(pos(events[2])), str(pos(events[3]))]
    assert [frames.event()["id"], frames.event()["id"]] == expected


def test_a_connection_ends_after_its_lifetime_and_the_client_resumes(
    stream, product, owner, settings
):
    settings.SSE_MAX_SECONDS = 0
    event = event_emit("portal.product.published", product=product)
    frames = stream(owner, {"after": event.pk})
    assert "retry" in frames.frame()
    assert frames.frame() is None  # ended: EventSource reconnects after `retry`


def test_a_quiet_stream_sends_keep_alive_comments(stream, owner, settings):
    settings.SSE_KEEPALIVE_SECONDS = 0.01
    frames = stream(owner)
    frames.frame()  # retry hint
    assert frames.frame() == {"comment": ["keep-alive"]}


def test_a_deactivated_person_stops_receiving_at_once(stream, product, owner):
    event_emit("portal.product.published", product=product)
    frames = stream(owner)
    assert frames.event()["event"] == "portal.product.published"
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    event_emit("portal.incident.opened", product=product)
    assert frames.event() is None


def test_someone_removed_from_the_domain_stops_seeing_its_drafts(stream, domain, member, product):
    draft = ProductFactory(domain=domain, slug="draft-one", status=LifecycleStatus.DRAFT)
    first = event_emit("portal.product.created", product=draft)
    frames = stream(member)
    assert frames.event()["id"] == str(pos(first))
    DomainMembership.objects.filter(user=member, domain=domain).delete()
    event_emit("portal.product.version_changed", product=draft)
    public = event_emit("portal.product.published", product=product)
    assert frames.event()["id"] == str(pos(public))


def test_a_revoked_token_ends_the_stream(api_client, product, owner):
    instance, token = AuthToken.objects.create(owner)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api_client.get(URL, HTTP_ACCEPT="text/event-stream")
    frames = Frames(response)
    try:
        first = event_emit("portal.product.published", product=product)
        assert frames.event()["id"] == str(pos(first))
        instance.delete()
        event_emit("portal.incident.opened", product=product)
        assert frames.event() is None
    finally:
        frames.close()


def test_streams_beyond_the_limit_get_503_with_retry_after(stream, owner, settings):
    settings.SSE_MAX_CONNECTIONS = SLOTS.open + 1
    first = stream(owner)
    refused = stream(owner)
    assert refused.status_code == 503
    assert refused["Retry-After"] == str(settings.SSE_RETRY_AFTER_SECONDS)
    assert "/api/v1/events/?after=" in refused.json()["detail"]
    first.close()  # a slot is given back when a stream ends
    assert stream(owner).response.status_code == 200


def test_bad_filters_and_anonymous_callers_are_refused(client_as, api_client, owner):
    assert api_client.get(URL, HTTP_ACCEPT="text/event-stream").status_code in (401, 403)
    bad = client_as(owner).get(URL, {"type": "portal.nope"}, HTTP_ACCEPT="text/event-stream")
    assert bad.status_code == 400 and "Known types" in bad.content.decode()
    bad_header = client_as(owner).get(URL, HTTP_LAST_EVENT_ID="x1", HTTP_ACCEPT="text/event-stream")
    assert bad_header.status_code == 400 and "Last-Event-ID" in bad_header.content.decode()


def test_an_event_committed_late_with_a_lower_id_is_not_skipped(stream, product, owner, settings):
    """Ids are taken when events are written, not when they commit: the stream follows
    positions (commit order), so an event whose transaction commits late comes after."""
    settings.SSE_MAX_SECONDS = 30  # a stream that skipped it ends without it: a failure
    first = event_emit("portal.product.published", product=product)
    frames = stream(owner)
    assert frames.event()["id"] == str(pos(first))
    written, release, late = threading.Event(), threading.Event(), []

    def slow_transaction():
        try:
            with transaction.atomic():
                late.append(event_emit("portal.check_run.started", product=product))
                written.set()
                release.wait(30)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_transaction)
    writer.start()
    written.wait(30)
    later = event_emit("portal.check_run.finished", product=product)  # a higher id, committed
    # The late transaction commits while the stream is reading (whenever that is).
    threading.Timer(0.5, release.set).start()
    try:
        # In commit order: the later id committed first; the late one follows, not skipped.
        assert [frames.event()["id"], frames.event()["id"]] == [str(pos(later)), str(pos(late[0]))]
    finally:
        release.set()
        writer.join(30)
