"""The HTTP destination against a real local receiver (tests/sharing/syncs/receiver.py)."""

import email.utils
import json
import socket
import time

import pytest

from sharing.models import SyncDestination
from sharing.syncs.destinations import (
    DestinationError,
    DestinationUnavailable,
    OutgoingBatch,
    destination_writer,
)
from sharing.syncs.destinations.http import body_template_error, retry_after_seconds
from tests.sharing.syncs.receiver import SyncReceiver

RUN_ID = 41


@pytest.fixture(autouse=True)
def _fast_http(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    settings.SYNCS_HTTP_TIMEOUT_SECONDS = 0.5
    settings.SYNCS_HTTP_RETRY_BASE_SECONDS = 0.01
    settings.SYNCS_HTTP_RETRY_MAX_SECONDS = 2
    settings.SYNCS_HTTP_MAX_TRIES = 4


@pytest.fixture
def receiver():
    receiver = SyncReceiver().start()
    yield receiver
    receiver.stop()


def destination(url, **fields):
    return SyncDestination(name="CRM", kind="http", url=url, **fields)


def batch(start, count, operation="upsert", run_id=RUN_ID):
    keys = [json.dumps([f"lead-{n}"]) for n in range(start, start + count)]
    return OutgoingBatch(
        operation=operation,
        keys=keys,
        records=[{"lead_id": f"lead-{n}", "score": n} for n in range(start, start + count)],
        idempotency_keys=[f"{run_id}:{key}" for key in keys],
    )


def test_records_go_in_batches_with_their_idempotency_key_and_operation(receiver):
    with destination_writer(
        destination(receiver.url, batch_size=500), key_fields=["lead_id"], run_id=RUN_ID
    ) as writer:
        writer.check()
        assert writer.fields() is None
        outcome = writer.send(batch(0, 1200))
    assert outcome.acked == list(range(1200)) and outcome.rejected == {}
    assert [request.records for request in receiver.arrivals()] == [500, 500, 200]
    first = json.loads(receiver.arrivals()[0].body)
    assert first["records"][0] == {
        "lead_id": "lead-0",
        "score": 0,
        "idempotency_key": f'{RUN_ID}:["lead-0"]',
        "op": "upsert",
    }
    assert receiver.arrivals()[0].headers["content-type"] == "application/json"
    assert len(receiver.applied) == 1200


def test_a_resent_batch_carries_the_same_keys_and_is_applied_once(receiver):
    dest = destination(receiver.url)
    with destination_writer(dest, key_fields=["lead_id"], run_id=RUN_ID) as writer:
        writer.send(batch(0, 10))
    with destination_writer(dest, key_fields=["lead_id"], run_id=RUN_ID) as writer:
        writer.send(batch(0, 10))  # a resumed run: the same run id
        writer.send(batch(0, 10, run_id=RUN_ID + 1))  # the next run: new keys
    first, again, next_run = receiver.arrivals()
    assert first.headers["idempotency-key"] == again.headers["idempotency-key"]
    assert next_run.headers["idempotency-key"] != first.headers["idempotency-key"]
    assert len(receiver.applied) == 20 and receiver.duplicates == 10


def test_deletes_are_sent_with_their_operation(receiver):
    with destination_writer(destination(receiver.url), key_fields=["lead_id"], run_id=1) as w:
        deletes = batch(0, 2, operation="delete")
        deletes.records = [{"lead_id": "lead-0"}, {"lead_id": "lead-1"}]
        assert w.send(deletes).acked == [0, 1]
    assert [r["op"] for r in receiver.applied.values()] == ["delete", "delete"]


def test_the_body_template_places_the_records(receiver):
    template = '{"source": "portal", "data": {"items": {{records}}}}'
    with destination_writer(
        destination(receiver.url, body_template=template), key_fields=["lead_id"], run_id=1
    ) as writer:
        assert writer.send(batch(0, 3)).acked == [0, 1, 2]
    body = json.loads(receiver.arrivals()[0].body)
    assert body["source"] == "portal"
    assert [r["lead_id"] for r in body["data"]["items"]] == ["lead-0", "lead-1", "lead-2"]


def test_a_body_template_without_the_placeholder_or_not_json_is_refused():
    assert "{{records}}" in body_template_error('{"records": []}')
    assert "not JSON" in body_template_error('{"records": {{records}}')
    assert body_template_error('{"items": {{records}}}') is None
    assert body_template_error("") is None


def test_the_auth_header_comes_from_the_environment(receiver, monkeypatch):
    monkeypatch.setenv("SYNC_SECRET_CRM_TOKEN", "Bearer s3cret-value")
    dest = destination(
        receiver.url, secret_env="SYNC_SECRET_CRM_TOKEN", auth_header="Authorization"
    )
    with destination_writer(dest, key_fields=["lead_id"], run_id=1) as writer:
        writer.send(batch(0, 1))
    assert receiver.arrivals()[0].headers["authorization"] == "Bearer s3cret-value"


def test_a_missing_secret_variable_is_named_never_valued(receiver, monkeypatch):
    monkeypatch.delenv("SYNC_SECRET_CRM_TOKEN", raising=False)
    dest = destination(receiver.url, secret_env="SYNC_SECRET_CRM_TOKEN", auth_header="X-Api-Key")
    with destination_writer(dest, key_fields=["lead_id"], run_id=1) as writer:
        with pytest.raises(DestinationError, match="variable SYNC_SECRET_CRM_TOKEN named by"):
            writer.check()
        with pytest.raises(DestinationError, match="SYNC_SECRET_CRM_TOKEN"):
            writer.send(batch(0, 1))
    assert receiver.arrivals() == []


def test_records_the_receiver_lists_as_rejected_are_not_acknowledged(receiver):
    records = batch(0, 5)
    receiver.reject = {
        records.idempotency_keys[1]: "unknown owner",
        records.idempotency_keys[3]: "",
    }
    with destination_writer(destination(receiver.url), key_fields=["lead_id"], run_id=1) as w:
        outcome = w.send(records)
    assert outcome.acked == [0, 2, 4]
    assert outcome.rejected == {1: "unknown owner", 3: "rejected by the destination"}


def test_a_4xx_refusal_rejects_the_whole_batch_with_the_receivers_words(receiver):
    receiver.status = (422, '{"error": "field email is required"}')
    with destination_writer(destination(receiver.url), key_fields=["lead_id"], run_id=1) as w:
        outcome = w.send(batch(0, 3))
    assert outcome.acked == []
    assert set(outcome.rejected) == {0, 1, 2}
    assert "422" in outcome.rejected[0] and "field email is required" in outcome.rejected[0]
    assert len(receiver.arrivals()) == 1  # not retried


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "refused the credentials"), (404, "no such URL"), (413, "lower the batch size")],
)
def test_a_refusal_of_the_request_itself_stops_the_run_instead_of_rejecting_records(
    receiver, status, words
):
    receiver.status = (status, "no")
    with destination_writer(destination(receiver.url), key_fields=["lead_id"], run_id=1) as w:
        with pytest.raises(DestinationError, match=words) as excinfo:
            w.send(batch(0, 3))
    assert not isinstance(excinfo.value, DestinationUnavailable)
    assert len(receiver.arrivals()) == 1


def test_429_every_10th_request_still_delivers_every_record_exactly_once(receiver):
    receiver.retry_after_every = 10
    with destination_writer(
        destination(receiver.url, batch_size=20), key_fields=["lead_id"], run_id=1
    ) as writer:
        outcomes = [writer.send(batch(start, 20)) for start in range(0, 1000, 20)]
    assert all(outcome.acked == list(range(20)) for outcome in outcomes)
    answered = [request.answered for request in receiver.arrivals()]
    assert answered.count(429) >= 5
    assert len(receiver.applied) == 1000 and receiver.duplicates == 0


def test_retry_after_is_honoured(receiver):
    receiver.retry_after_every = 2
    receiver.retry_after = "1"
    with destination_writer(destination(receiver.url), key_fields=["lead_id"], run_id=1) as w:
        w.send(batch(0, 1))
        assert w.send(batch(1, 1)).acked == [0]
    first, refused, retried = receiver.arrivals()
    assert refused.answered == 429 and retried.answered == 200
    assert retried.at - refused.at >= 0.95  # waited the second it was told to


def test_retry_after_as_seconds_or_an_http_date():
    assert retry_after_seconds("7") == 7.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds(later) <= 31
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_a_receiver_failing_for_a_while_gets_the_batch_later(receiver):
    receiver.fail_next = 2
    with destination_writer(destination(receiver.url), key_fields=["lead_id"], run_id=1) as w:
        assert w.send(batch(0, 5)).acked == list(range(5))
    assert [r.answered for r in receiver.arrivals()] == [500, 500, 200]


def test_a_receiver_failing_past_the_tries_leaves_the_batch_unacknowledged(receiver):
    receiver.fail_next = 100
    receiver.fail_status = 503
    with destination_writer(destination(receiver.url), key_fields=["lead_id"], run_id=1) as w:
        with pytest.raises(DestinationUnavailable, match="failed 4 tries"):
            w.send(batch(0, 5))
    assert len(receiver.arrivals()) == 4 and receiver.applied == {}


def test_a_timeout_is_retried_and_the_receiver_applies_each_record_once(receiver):
    receiver.sleep_next = 1
    receiver.sleep_seconds = 1.5  # past the 0.5 s timeout, after applying
    with destination_writer(destination(receiver.url), key_fields=["lead_id"], run_id=1) as w:
        assert w.send(batch(0, 5)).acked == list(range(5))
    assert len(receiver.arrivals()) == 2
    assert len(receiver.applied) == 5 and receiver.duplicates == 5


def test_an_unreachable_receiver_is_unavailable():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dest = destination(f"http://127.0.0.1:{port}/crm")
    with destination_writer(dest, key_fields=["lead_id"], run_id=1) as writer:
        with pytest.raises(DestinationUnavailable, match="could not be reached"):
            writer.check()
        with pytest.raises(DestinationUnavailable, match="connection failed"):
            writer.send(batch(0, 1))


def test_private_and_plain_http_targets_are_refused_unless_allowed(receiver, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    with destination_writer(destination(receiver.url), key_fields=["lead_id"], run_id=1) as w:
        with pytest.raises(DestinationError, match="https"):
            w.send(batch(0, 1))
    port = receiver.server.server_address[1]
    loopback = destination(f"https://127.0.0.1:{port}/crm")
    with destination_writer(loopback, key_fields=["lead_id"], run_id=1) as w:
        with pytest.raises(DestinationError, match="loopback, private"):
            w.check()
    assert receiver.arrivals() == []


def test_the_rate_limit_spaces_requests(receiver):
    with destination_writer(
        destination(receiver.url, batch_size=1, rate_per_second=20),
        key_fields=["lead_id"],
        run_id=1,
    ) as writer:
        writer.send(batch(0, 6))
    arrivals = [request.at for request in receiver.arrivals()]
    # a burst of 20 tokens is allowed at first, so six requests must not be slowed...
    assert len(arrivals) == 6
    with destination_writer(
        destination(receiver.url, batch_size=1, rate_per_second=2), key_fields=["lead_id"], run_id=2
    ) as writer:
        writer.send(batch(0, 4))
    spaced = [request.at for request in receiver.arrivals()[6:]]
    # ...while at 2 per second the 3rd and 4th wait for their tokens (0.5 s each).
    assert spaced[3] - spaced[0] >= 0.9
