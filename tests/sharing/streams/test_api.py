"""GET /api/v1/products/<key>/stream/: the governed read of a stream port, on the real
NATS server, four ways (anonymous, no access, access, narrowed access), with bad input,
schema-invalid messages, NULLs in the row filter, resuming, and a revocation mid-stream."""

import json

import pytest

from products.choices import PortKind
from sharing.access.services.grants import grant_create, grant_revoke
from sharing.choices import Channel
from sharing.models import AccessEvent
from tests.factories import OutputPortFactory, UserFactory
from tests.sharing.streams.conftest import ndjson, order

pytestmark = pytest.mark.django_db

URL = "/api/v1/products/sales.live-orders/stream/"


def _data(lines):
    return [line["data"] for line in lines if "data" in line]


def test_owner_reads_every_message_once_with_every_column(
    stream_product, nats_stream, owner, client_as
):
    seqs = nats_stream.publish(order(1), order(2, country="NL", amount=None))
    response = client_as(owner).get(URL, {"from": "1"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    body = b"".join(response.streaming_content)
    lines = [json.loads(line) for line in body.splitlines()]
    assert [line["seq"] for line in lines] == seqs
    assert lines[1]["data"] == order(2, country="NL", amount=None)
    event = AccessEvent.objects.get(channel=Channel.STREAM)
    assert event.user == owner and event.rows == 2
    assert event.columns == ["order_id", "country", "amount", "email", "placed_at"]
    assert event.detail["from"] == "1" and event.detail["ended"] == "end"
    assert event.bytes == len(body)


def test_messages_that_do_not_match_the_schema_are_counted_never_served(
    stream_product, nats_stream, owner, client_as
):
    nats_stream.publish(
        order(1),
        b"not json",
        b"[1, 2]",
        {"country": "BE"},  # order_id is not nullable
        order("seven"),  # not a whole number
        order(2, placed_at="yesterday"),  # not a time
        order(3),
    )
    lines = ndjson(client_as(owner).get(URL))
    assert [row["order_id"] for row in _data(lines)] == [1, 3]
    assert AccessEvent.objects.get(channel=Channel.STREAM).detail["invalid"] == 5


def test_anonymous_and_people_without_access_are_refused(stream_product, outsider, client_as):
    assert client_as(None).get(URL).status_code in (401, 403)
    response = client_as(outsider).get(URL)
    assert response.status_code == 403
    assert "Request access" in response.json()["detail"]


def test_a_narrowed_grant_serves_its_columns_and_rows_only(
    stream_product, nats_stream, owner, client_as
):
    reader = UserFactory(username="reader")
    grant_create(
        product=stream_product,
        by=owner,
        user=reader,
        columns=["order_id", "country", "email"],
        row_filter=[{"column": "country", "op": "in", "value": ["BE", "LU"]}],
        reason="Benelux orders only",
    )
    nats_stream.publish(
        order(1), order(2, country="NL"), order(3, country="LU"), order(4, country=None)
    )
    client = client_as(reader)
    lines = ndjson(client.get(URL))
    # email is confidential but the grant names it: served as it is.
    assert _data(lines) == [
        {"order_id": 1, "country": "BE", "email": "a@example.com"},
        {"order_id": 3, "country": "LU", "email": "a@example.com"},
    ]
    event = AccessEvent.objects.get(channel=Channel.STREAM)
    assert event.row_filter == [{"column": "country", "op": "in", "value": ["BE", "LU"]}]
    assert event.detail["filtered"] == 2
    assert client.get(URL, {"columns": "amount"}).status_code == 403


def test_confidential_columns_are_masked_for_a_grant_that_does_not_name_them(
    stream_product, nats_stream, owner, client_as
):
    grantee = UserFactory(username="grantee")
    grant_create(product=stream_product, by=owner, user=grantee, reason="all columns")
    nats_stream.publish(order(1), order(2, email=None))
    rows = _data(ndjson(client_as(grantee).get(URL)))
    assert [row["email"] for row in rows] == ["****", None]
    # Filtering on a masked column would reveal it.
    response = client_as(grantee).get(
        URL, {"filter": json.dumps([{"column": "email", "op": "=", "value": "a@example.com"}])}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ({"column": "amount", "op": ">", "value": 10}, [2]),
        ({"column": "amount", "op": "!=", "value": 10}, [2]),  # NULL != 10 holds for nothing
        ({"column": "amount", "op": "not in", "value": [10]}, [2]),
        ({"column": "amount", "op": "is null"}, [3, 4]),
        ({"column": "amount", "op": ">=", "value": "10"}, [1, 2]),  # typed like SQL binds
        ({"column": "country", "op": "=", "value": 'O\'Brien "x"'}, [4]),
        ({"column": "placed_at", "op": ">=", "value": "2026-12-05T11:30:00+01:00"}, [2]),
        ({"column": "order_id", "op": "in", "value": ["1", 4]}, [1, 4]),
    ],
)
def test_the_row_filter_has_the_sql_channels_semantics(
    stream_product, nats_stream, owner, client_as, clause, expected
):
    nats_stream.publish(
        order(1, amount=10, placed_at="2026-12-05T10:00:00Z"),
        order(2, amount=12.5, placed_at="2026-12-05T10:30:00Z"),
        order(3, amount=None),
        order(4, country='O\'Brien "x"', amount=None, placed_at="2026-12-05T10:29:59+00:00"),
    )
    response = client_as(owner).get(URL, {"filter": json.dumps([clause])})
    assert response.status_code == 200, response.content
    assert [row["order_id"] for row in _data(ndjson(response))] == expected


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"from": "yesterday"}, 400, "sequence number"),
        ({"format": "csv"}, 400, "ndjson or sse"),
        ({"limit": "-1"}, 400, "whole number"),
        ({"limit": "0"}, 400, "1 or more"),
        ({"follow": "maybe"}, 400, "follow"),
        ({"columns": "order_id,nope"}, 400, "nope"),
        ({"filter": "[{"}, 400, "not valid JSON"),
        ({"filter": json.dumps([{"column": "amount", "op": ">", "value": "lots"}])}, 400, "amount"),
        ({"port": "nope"}, 404, "nope"),
    ],
)
def test_bad_input_answers_400_saying_what(stream_product, owner, client_as, params, status, words):
    response = client_as(owner).get(URL, params)
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_a_table_port_is_not_a_stream(stream_product, owner, client_as):
    OutputPortFactory(product=stream_product, name="History", slug="history", kind=PortKind.TABLE)
    response = client_as(owner).get(URL, {"port": "history"})
    assert response.status_code == 400
    assert "not a stream" in response.json()["detail"]


def test_from_a_time_the_last_n_and_sse_resume_after_the_last_event_id(
    stream_product, nats_stream, owner, client_as
):
    nats_stream.publish(*(order(n) for n in range(1, 6)))
    client = client_as(owner)
    assert [row["order_id"] for row in _data(ndjson(client.get(URL, {"from": "-2"})))] == [4, 5]
    assert len(ndjson(client.get(URL, {"from": "2000-01-01T00:00:00"}))) == 5
    assert ndjson(client.get(URL, {"from": "2999-01-01T00:00:00Z"})) == []
    response = client.get(URL, {"format": "sse", "follow": "0"}, HTTP_LAST_EVENT_ID="3")
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join(response.streaming_content).decode()
    events = [block for block in body.split("\n\n") if block.startswith("id: ")]
    assert [block.splitlines()[0] for block in events] == ["id: 4", "id: 5"]
    assert json.loads(events[0].splitlines()[1].removeprefix("data: "))["order_id"] == 4
    assert 'event: end\ndata: {"reason": "end"}' in body


def test_a_revoked_reader_is_cut_off_before_the_next_message(
    stream_product, nats_stream, owner, client_as
):
    reader = UserFactory(username="reader")
    grant = grant_create(product=stream_product, by=owner, user=reader, reason="live orders")
    nats_stream.publish(order(1), order(2))
    response = client_as(reader).get(URL, {"from": "1", "follow": "1"})
    chunks = iter(response.streaming_content)
    first = []
    while len(first) < 2:  # one chunk per batch fetched; keep-alives are empty lines
        first += [json.loads(line) for line in next(chunks).splitlines() if line.strip()]
    assert [line["data"]["order_id"] for line in first] == [1, 2]

    grant_revoke(grant=grant, by=owner, reason="left the team")
    nats_stream.publish(order(3))
    rest = [json.loads(line) for chunk in chunks for line in chunk.splitlines() if line.strip()]
    assert rest == [{"error": "Your access to this product was revoked. Request access again."}]
    event = AccessEvent.objects.get(channel=Channel.STREAM)
    assert event.rows == 2 and event.detail["ended"] == "access"


def test_the_limit_ends_a_following_subscription(stream_product, nats_stream, owner, client_as):
    nats_stream.publish(*(order(n) for n in range(1, 4)))
    lines = ndjson(client_as(owner).get(URL, {"follow": "1", "limit": "2"}))
    assert [line["seq"] for line in lines] == [1, 2]


def test_a_reader_whose_access_narrows_mid_stream_is_cut_off_too(
    stream_product, nats_stream, owner, client_as
):
    reader = UserFactory(username="reader")
    wide = grant_create(product=stream_product, by=owner, user=reader, reason="all orders")
    grant_create(
        product=stream_product,
        by=owner,
        user=reader,
        row_filter=[{"column": "country", "op": "=", "value": "NL"}],
        reason="Dutch orders only, from next week",
    )
    nats_stream.publish(order(1))
    response = client_as(reader).get(URL, {"follow": "1"})
    chunks = iter(response.streaming_content)
    assert json.loads(next(chunks))["data"]["country"] == "BE"

    grant_revoke(grant=wide, by=owner, reason="narrowed to NL")
    nats_stream.publish(order(2))
    rest = [json.loads(line) for chunk in chunks for line in chunk.splitlines() if line.strip()]
    assert rest == [{"error": "Your access to this product changed: subscribe again."}]
