"""Share-link limits under real concurrency: parallel clients against a live server on
PostgreSQL (each request in its own server thread, its own database connection and
transaction), and the per-address rate limit counted in a real Redis."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings as django_settings

from sharing.choices import AuditAction
from sharing.models import AccessEvent, ShareLink
from sharing.serving.ratelimit import KEY_PREFIX, _redis
from sharing.share_links.services import share_link_create
from tests.conftest import require_service

CLIENTS = 12


@pytest.fixture
def live(live_server, postgres):
    return live_server


def _get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - our server
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def _all_at_once(urls: list[str]) -> list[tuple[int, bytes, dict]]:
    """GET every URL from its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(urls))

    def one(url: str):
        barrier.wait()
        return _get(url)

    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        return list(pool.map(one, urls))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("limit", [3, None])
def test_concurrent_downloads_never_exceed_the_limit(live, orders, owner, limit):
    link, token = share_link_create(by=owner, product=orders, format="csv", max_downloads=limit)
    results = _all_at_once([f"{live.url}/s/{token}/download"] * CLIENTS)

    statuses = sorted(status for status, _, _ in results)
    served = limit if limit is not None else CLIENTS
    assert statuses == [200] * served + [404] * (CLIENTS - served)
    bodies = {body for status, body, _ in results if status == 200}
    assert len(bodies) == 1 and bodies.pop().startswith(b'"order_id","country"')
    link.refresh_from_db()
    assert link.download_count == served
    reads = AccessEvent.objects.filter(action=AuditAction.READ, channel="share_link")
    assert reads.count() == served
    assert set(reads.values_list("client_address", flat=True)) == {"127.0.0.1"}


@pytest.mark.django_db(transaction=True)
def test_the_rate_limit_holds_across_concurrent_requests_in_redis(live, orders, owner, settings):
    if not django_settings.REDIS_URL.startswith("redis://"):
        require_service("Redis", "REDIS_URL does not point at Redis")
    settings.SHARE_LINK_RATE_LIMIT = "5/hour"
    _, token = share_link_create(by=owner, product=orders, format="csv")
    results = _all_at_once([f"{live.url}/s/{token}/"] * CLIENTS)

    assert sorted(status for status, _, _ in results) == [200] * 5 + [429] * (CLIENTS - 5)
    for status, body, headers in results:
        if status == 429:
            assert 0 < int(headers["Retry-After"]) <= 3600
            assert headers["Cache-Control"] == "no-store"
            assert b"Too many requests" in body
    # The count lives in Redis, with an expiry: the window ends.
    client = _redis(django_settings.REDIS_URL)
    key = f"{KEY_PREFIX}share-link:127.0.0.1"
    assert int(client.get(key)) == CLIENTS
    assert 0 < client.ttl(key) <= 3600
    assert ShareLink.objects.get().download_count == 0


def test_each_address_has_its_own_count(client, settings, db):
    if not django_settings.REDIS_URL.startswith("redis://"):
        require_service("Redis", "REDIS_URL does not point at Redis")
    settings.SHARE_LINK_RATE_LIMIT = "2/min"
    url = f"/s/{'A' * 43}/"
    first = [client.get(url, REMOTE_ADDR="192.0.2.1").status_code for _ in range(3)]
    second = [client.get(url, REMOTE_ADDR="192.0.2.2").status_code for _ in range(3)]
    assert first == second == [404, 404, 429]
