"""Delta Sharing needs the share right, as share links do: a share serves what its creator
may *share* (admins, the domain's owners and stewards, holders of a grant marked
shareable), checked again at every query and at every fetch of a signed file URL. A
steward demoted to a plain grantee (or a plain member) stops serving recipients at the
next request; signed file URLs live `URL_MAX_AGE` (5 minutes) and stop with the access
behind them. Against a running portal (pytest-django's live server, on PostgreSQL)."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import timedelta

import pytest
from django.core import signing
from django.core.exceptions import ValidationError
from django.utils import timezone

from products.choices import MembershipRole
from products.models import DomainMembership
from sharing.choices import AuditAction, Channel
from sharing.delta_sharing.protocol import FILE_SALT, URL_MAX_AGE
from sharing.delta_sharing.services import (
    delta_recipient_revoke,
    delta_share_create,
    delta_share_table_add,
)
from sharing.models import AccessEvent, AccessGrant
from tests.factories import DomainFactory, MembershipFactory
from tests.sharing.delta_sharing.recipient import Recipient, fetch

pytestmark = pytest.mark.django_db(transaction=True)

QUERY = "/shares/partners/schemas/default/tables/orders/query"


@pytest.fixture
def steward_share(steward, orders):
    share = delta_share_create(by=steward, name="partners")
    delta_share_table_add(share=share, by=steward, product=orders)
    return share


@pytest.fixture
def recipient(steward_share, steward, live_server, tmp_path):
    # Raw protocol requests only: no client process needed.
    return Recipient(
        share=steward_share, by=steward, live_server=live_server, tmp_path=tmp_path, python=""
    )


def query(recipient) -> tuple[int, dict]:
    status, _, body = recipient.http("POST", QUERY, {})
    lines = body.decode().splitlines()
    return status, json.loads(lines[0]) if status != 200 else json.loads(lines[2])


def file_url(recipient) -> str:
    status, line = query(recipient)
    assert status == 200, line
    return line["file"]["url"]


def get(url: str) -> tuple[int, dict | bytes]:
    status, _, body = fetch(urllib.request.Request(url))
    return status, body if status == 200 else json.loads(body)


def demote(steward, orders, *, to: str) -> None:
    """The steward loses the stewardship: a plain member of the domain, or out of the
    domain with a plain (non-shareable) grant."""
    membership = DomainMembership.objects.get(user=steward, domain=orders.domain)
    if to == "member":
        membership.role = MembershipRole.MEMBER
        membership.save()
    else:
        membership.delete()
        AccessGrant.objects.create(
            product=orders, user=steward, expires_at=timezone.now() + timedelta(days=30)
        )


@pytest.mark.parametrize("to", ["member", "plain grantee"])
def test_a_demoted_steward_stops_serving_at_the_next_query(recipient, steward, orders, to):
    assert query(recipient)[0] == 200
    demote(steward, orders, to=to)
    status, error = query(recipient)
    assert status == 403
    assert error["errorCode"] == "PERMISSION_DENIED"
    assert "may not share this product's data" in error["message"]
    for path in ("version", "metadata"):
        status, _, _ = recipient.http("GET", QUERY.replace("query", path))
        assert status == 403, path
    event = AccessEvent.objects.get(action=AuditAction.READ_DENIED)
    assert (event.channel, event.user) == (Channel.DELTA_SHARING, steward)


def test_a_grant_marked_shareable_keeps_serving(recipient, steward, orders):
    demote(steward, orders, to="plain grantee")
    AccessGrant.objects.filter(user=steward).update(shareable=True)
    status, line = query(recipient)
    assert status == 200, line


def test_a_creator_without_the_share_right_cannot_add_a_table(orders, admin_user):
    marketer = MembershipFactory(
        domain=DomainFactory(name="Marketing", slug="marketing"), role=MembershipRole.OWNER
    ).user
    AccessGrant.objects.create(
        product=orders, user=marketer, expires_at=timezone.now() + timedelta(days=30)
    )
    share = delta_share_create(by=marketer, name="campaigns")
    with pytest.raises(ValidationError, match="cannot share this"):
        delta_share_table_add(share=share, by=admin_user, product=orders)
    assert not share.tables.exists()


def test_a_signed_url_stops_when_the_creator_loses_the_share_right(recipient, steward, orders):
    url = file_url(recipient)
    status, data = get(url)
    assert status == 200 and data.endswith(b"PAR1")
    demote(steward, orders, to="plain grantee")
    status, error = get(url)
    assert status == 403 and error["errorCode"] == "PERMISSION_DENIED"
    assert "may not share" in error["message"]


def test_a_signed_url_stops_when_the_recipient_is_revoked(recipient, steward):
    url = file_url(recipient)
    assert get(url)[0] == 200
    delta_recipient_revoke(recipient=recipient.model, by=steward)
    status, error = get(url)
    assert status == 403 and "revoked" in error["message"]


def test_a_signed_url_stops_when_what_the_table_shares_changes(recipient, steward_share):
    url = file_url(recipient)
    steward_share.tables.update(columns=["order_id", "country"])
    status, error = get(url)
    assert status == 403 and "query the table again" in error["message"]
    # A new query hands out URLs of the narrower table.
    status, data = get(file_url(recipient))
    assert status == 200


def test_signed_urls_live_five_minutes(recipient, monkeypatch):
    assert URL_MAX_AGE == timedelta(minutes=5)
    url = file_url(recipient)
    token = url.rstrip("/").rsplit("/", 1)[1]
    payload = signing.loads(token, salt=FILE_SALT)

    def signed_ago(seconds: float) -> str:
        then = time.time() - seconds
        with monkeypatch.context() as patch:
            patch.setattr(signing.time, "time", lambda: then)
            return url.replace(token, signing.dumps(payload, salt=FILE_SALT))

    assert get(signed_ago(URL_MAX_AGE.total_seconds() - 30))[0] == 200
    status, error = get(signed_ago(URL_MAX_AGE.total_seconds() + 30))
    assert status == 403 and "expired" in error["message"]
    # The query says so too: each file line's expirationTimestamp is URL_MAX_AGE away.
    _, line = query(recipient)
    expires = line["file"]["expirationTimestamp"] / 1000
    assert abs(expires - (time.time() + URL_MAX_AGE.total_seconds())) < 30


def test_a_url_signed_without_recipient_and_shape_is_refused(recipient):
    url = file_url(recipient)
    token = url.rstrip("/").rsplit("/", 1)[1]
    payload = signing.loads(token, salt=FILE_SALT)
    old_style = signing.dumps({k: payload[k] for k in ("t", "s", "f")}, salt=FILE_SALT)
    status, error = get(url.replace(token, old_style))
    assert status == 403 and error["errorCode"] == "PERMISSION_DENIED"
