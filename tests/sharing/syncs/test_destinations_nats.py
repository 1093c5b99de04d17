"""The NATS JetStream destination against the real server (127.0.0.1:4222), each test with
its own stream."""

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import nats
import pytest
from nats.js.api import StreamConfig

from sharing.models import SyncDestination
from sharing.syncs.destinations import (
    DestinationError,
    DestinationUnavailable,
    OutgoingBatch,
    destination_writer,
)
from tests.conftest import require_service

NATS_URL = "nats://127.0.0.1:4222"


async def _stream(action, name, subject=None):
    client = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
    try:
        js = client.jetstream()
        if action == "add":
            await js.add_stream(StreamConfig(name=name, subjects=[subject], max_msg_size=2048))
        elif action == "delete":
            await js.delete_stream(name)
        else:  # read every message
            consumer = await js.pull_subscribe(subject, stream=name)
            messages = await consumer.fetch(1000, timeout=2)
            return [(message.headers, json.loads(message.data)) for message in messages]
    finally:
        await client.close()


def _on_own_thread(coroutine):
    """asyncio.run on a thread of its own: a browser test earlier in the session leaves
    Playwright's event loop on this thread."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


@pytest.fixture
def stream():
    name = f"SYNC_DEST_{uuid.uuid4().hex[:8].upper()}"
    subject = f"crm.{name.lower()}"
    try:
        _on_own_thread(_stream("add", name, subject))
    except Exception as exc:  # noqa: BLE001 - any failure: the server is not there
        require_service("NATS JetStream", repr(exc))
    yield name, subject
    _on_own_thread(_stream("delete", name))


def batch(count, run_id=3):
    keys = [json.dumps([n]) for n in range(count)]
    return OutgoingBatch(
        operation="upsert",
        keys=keys,
        records=[{"lead_id": n, "score": n * 10} for n in range(count)],
        idempotency_keys=[f"{run_id}:{key}" for key in keys],
    )


def test_one_message_per_record_with_its_dedup_id_and_a_resend_is_dropped(stream):
    name, subject = stream
    destination = SyncDestination(name="CRM bus", kind="nats", nats_url=NATS_URL, subject=subject)
    with destination_writer(destination, key_fields=["lead_id"], run_id=3) as writer:
        writer.check()
        assert writer.fields() is None
        assert writer.send(batch(150)).acked == list(range(150))
        assert writer.send(batch(150)).acked == list(range(150))  # a resumed run's resend
    messages = _on_own_thread(_stream("read", name, subject))
    assert len(messages) == 150  # JetStream dropped the duplicates
    headers, first = messages[0]
    assert headers["Nats-Msg-Id"] == "3:[0]"
    assert first == {"lead_id": 0, "score": 0, "idempotency_key": "3:[0]", "op": "upsert"}


def test_a_record_too_large_for_the_stream_is_rejected_and_the_others_stored(stream):
    name, subject = stream
    records = batch(3)
    records.records[1]["notes"] = "x" * 5000  # above the stream's 2 KB message limit
    destination = SyncDestination(name="CRM bus", kind="nats", nats_url=NATS_URL, subject=subject)
    with destination_writer(destination, key_fields=["lead_id"], run_id=3) as writer:
        outcome = writer.send(records)
    assert outcome.acked == [0, 2]
    assert "JetStream refused" in outcome.rejected[1]


def test_a_subject_no_stream_captures_is_named(stream):
    destination = SyncDestination(
        name="CRM bus", kind="nats", nats_url=NATS_URL, subject="nobody.listens.here"
    )
    with destination_writer(destination, key_fields=["lead_id"], run_id=3) as writer:
        with pytest.raises(DestinationError, match="subject 'nobody.listens.here'"):
            writer.check()
        with pytest.raises(DestinationError, match="not stored"):
            writer.send(batch(1))


def test_the_server_url_defaults_to_the_settings(stream, settings):
    settings.NATS_URL = NATS_URL
    destination = SyncDestination(name="CRM bus", kind="nats", subject=stream[1])
    with destination_writer(destination, key_fields=["lead_id"], run_id=3) as writer:
        writer.check()
    settings.NATS_URL = ""
    with destination_writer(destination, key_fields=["lead_id"], run_id=3) as writer:
        with pytest.raises(DestinationError, match="NATS_URL is not set"):
            writer.check()


def test_an_unreachable_server_is_unavailable():
    destination = SyncDestination(
        name="CRM bus", kind="nats", nats_url="nats://127.0.0.1:1", subject="crm.leads"
    )
    with destination_writer(destination, key_fields=["lead_id"], run_id=3) as writer:
        with pytest.raises(DestinationUnavailable, match="could not be reached"):
            writer.check()


def test_the_writer_works_where_an_event_loop_already_runs(stream):
    """A sync called from a thread running an event loop (an async caller, a process
    driving a browser) still publishes: the writer's loop has a thread of its own."""
    _name, subject = stream
    destination = SyncDestination(name="CRM bus", kind="nats", nats_url=NATS_URL, subject=subject)

    async def inside_a_running_loop():
        with destination_writer(destination, key_fields=["lead_id"], run_id=4) as writer:
            writer.check()
            return writer.send(batch(3, run_id=4)).acked

    assert _on_own_thread(inside_a_running_loop()) == [0, 1, 2]
