"""`Portal().stream(key)` in the notebook client, against a real running portal
(pytest-django's live_server) and the real NATS server."""

import pytest
from knox.models import AuthToken

from portal_client import Portal, PortalPermissionError, PortalRequestError
from sharing.access.services.grants import grant_create, grant_revoke
from tests.factories import UserFactory
from tests.sharing.streams.conftest import order

pytestmark = pytest.mark.django_db(transaction=True)


def _portal(live_server, user) -> Portal:
    return Portal(url=live_server.url, token=AuthToken.objects.create(user)[1])


def test_messages_as_dicts_with_the_grant_applied_and_resumable(
    live_server, stream_product, nats_stream, owner
):
    reader = UserFactory(username="reader")
    grant_create(
        product=stream_product,
        by=owner,
        user=reader,
        row_filter=[{"column": "country", "op": "=", "value": "BE"}],
        reason="Belgian orders",
    )
    nats_stream.publish(order(1), order(2, country="NL"), order(3), order(4))
    portal = _portal(live_server, reader)
    messages = portal.stream(
        "sales.live-orders", columns=["order_id", "email"], follow=False, limit=2
    )
    assert list(messages) == [
        {"order_id": 1, "email": "****"},
        {"order_id": 3, "email": "****"},
    ]
    rest = portal.stream(
        "sales.live-orders", columns=["order_id"], from_=messages.last_seq + 1, follow=False
    )
    assert list(rest) == [{"order_id": 4}]


def test_dataframe_batches(live_server, stream_product, nats_stream, owner):
    nats_stream.publish(*(order(n) for n in range(1, 6)))
    frames = list(
        _portal(live_server, owner).stream("sales.live-orders", follow=False, batch_size=2)
    )
    assert [len(frame) for frame in frames] == [2, 2, 1]
    assert frames[2]["order_id"].tolist() == [5]
    assert list(frames[0].columns) == ["order_id", "country", "amount", "email", "placed_at"]


def test_bad_input_and_revocation_raise_the_portal_s_reason(
    live_server, stream_product, nats_stream, owner
):
    reader = UserFactory(username="reader")
    grant = grant_create(product=stream_product, by=owner, user=reader, reason="live orders")
    portal = _portal(live_server, reader)
    with pytest.raises(PortalRequestError, match="sequence number"):
        portal.stream("sales.live-orders", from_="soon")
    nats_stream.publish(order(1))
    messages = portal.stream("sales.live-orders", from_=1)
    assert next(messages)["order_id"] == 1
    grant_revoke(grant=grant, by=owner, reason="left the team")
    nats_stream.publish(order(2))
    with pytest.raises(PortalPermissionError, match="revoked"):
        next(messages)
