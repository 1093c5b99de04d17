"""Sign-in rate limits (portal.login_limits, django-axes) on real Redis: five failures for
one username from one address lock that pair out, on the sign-in page (a page saying
when to retry) and on POST /api/v1/auth/token/ (JSON), both with 429 and Retry-After;
other addresses and other usernames are unaffected; a success resets the count; the
lock lifts after the cool-off; a client cannot dodge it with its own X-Forwarded-For."""

import os
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client

from tests.conftest import require_service
from tests.factories import PASSWORD, UserFactory

LIMIT = 5


@pytest.fixture(autouse=True)
def redis_cache():
    """The counts live in the Redis cache every web process shares."""
    if "RedisCache" not in django_settings.CACHES["default"]["BACKEND"]:
        require_service("Redis", "REDIS_URL is not set: the cache is not Redis")
    assert django_settings.AXES_HANDLER == "axes.handlers.cache.AxesCacheHandler"
    return redis.Redis.from_url(django_settings.CACHES["default"]["LOCATION"])


def sign_in(client, username, password, *, address="10.0.0.1", **headers):
    return client.post(
        "/login/", {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


def token(client, username, password, *, address="10.0.0.1"):
    return client.post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def assert_locked_page(response):
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    content = response.content.decode()
    assert "Sign-in paused" in content
    assert "Try again in 15 minutes." in content
    assert "You can sign in again after" in content


def test_the_sign_in_page_locks_a_username_at_one_address_after_five_failures(
    client, user, redis_cache
):
    for attempt in range(1, LIMIT):
        response = sign_in(client, "dana", "wrong")
        assert response.status_code == 200, attempt  # the form, with its error
        assert "Please enter a correct username and password" in response.content.decode()
    assert_locked_page(sign_in(client, "dana", "wrong"))
    # Locked: even the right password is refused, and nobody is signed in.
    assert_locked_page(sign_in(client, "dana", PASSWORD))
    assert "_auth_user_id" not in client.session
    # The count is in Redis, where every web process finds it.
    assert any(b"axes" in key for key in redis_cache.scan_iter(count=1000))

    # Another address, or another username from the same address, signs in.
    other = Client()
    response = sign_in(other, "dana", PASSWORD, address="10.0.0.2")
    assert response.status_code == 302 and other.session["_auth_user_id"] == str(user.pk)
    UserFactory(username="eli")
    response = sign_in(Client(), "eli", PASSWORD, address="10.0.0.1")
    assert response.status_code == 302


def test_the_token_endpoint_counts_and_locks_alike(user):
    client = Client()
    for attempt in range(1, LIMIT):
        response = token(client, "dana", "wrong")
        assert response.status_code == 400, attempt
    response = token(client, "dana", "wrong")
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    assert response.json() == {
        "detail": "Too many failed sign-in attempts for this username from your address. "
        "Try again in 15 minutes.",
        "retry_after": 900,
    }
    assert token(client, "dana", PASSWORD).status_code == 429
    # The page and the API share the count: the sign-in page is locked for dana too.
    assert_locked_page(sign_in(Client(), "dana", PASSWORD))
    assert token(Client(), "dana", PASSWORD, address="10.0.0.9").status_code == 200


def test_a_success_resets_the_count(client, user):
    for _ in range(LIMIT - 1):
        assert sign_in(client, "dana", "wrong").status_code == 200
    assert sign_in(client, "dana", PASSWORD).status_code == 302
    client.logout()
    for _ in range(LIMIT - 1):
        assert sign_in(client, "dana", "wrong").status_code == 200
    assert sign_in(client, "dana", PASSWORD).status_code == 302


def test_the_lock_lifts_after_the_cool_off(client, user, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    for _ in range(LIMIT):
        response = sign_in(client, "dana", "wrong")
    assert response.status_code == 429
    assert response["Retry-After"] == "2"
    time.sleep(3)  # Redis expires the count
    assert sign_in(client, "dana", PASSWORD).status_code == 302


def test_a_forwarded_for_header_from_the_client_does_not_reset_the_count(client, user):
    """Without TRUSTED_PROXIES the address is the connection's: a made-up X-Forwarded-For
    per attempt is still one address."""
    for attempt in range(LIMIT):
        response = sign_in(client, "dana", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}")
    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_client_address_counts(user, settings):
    """With TRUSTED_PROXIES naming the load balancer, its X-Forwarded-For gives the client:
    two clients behind the same balancer are counted apart."""
    settings.TRUSTED_PROXIES = ["10.9.0.0/16"]
    balancer = "10.9.0.5"
    for _ in range(LIMIT):
        response = sign_in(
            Client(), "dana", "wrong", address=balancer, HTTP_X_FORWARDED_FOR="203.0.113.7"
        )
    assert response.status_code == 429
    response = sign_in(
        Client(), "dana", PASSWORD, address=balancer, HTTP_X_FORWARDED_FOR="203.0.113.8"
    )
    assert response.status_code == 302
    # A client's own X-Forwarded-For before the balancer's hop changes nothing.
    response = sign_in(
        Client(),
        "dana",
        PASSWORD,
        address=balancer,
        HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7",
    )
    assert response.status_code == 429


def test_an_admin_lifts_a_lockout_from_the_command_line(client, user):
    from django.core.management import call_command

    for _ in range(LIMIT):
        response = sign_in(client, "dana", "wrong")
    assert response.status_code == 429
    call_command("axes_reset_ip_username", "10.0.0.1", "dana", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert sign_in(client, "dana", PASSWORD).status_code == 302
