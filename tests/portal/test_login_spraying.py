"""Password spraying (portal.login_limits): one password tried across many usernames from
one address. 20 failures from one address within 15 minutes, whatever the usernames, lock
that address out for 15 minutes, on the sign-in page and on POST /api/v1/auth/token/
alike; other addresses are unaffected, and a person who mistypes their own password still
meets the per-username lockout first, with its message unchanged. On real Redis."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client

from portal.login_limits import address_lockout_clear
from tests.conftest import require_service
from tests.factories import PASSWORD

ADDRESS_LIMIT = 20
PERSON_MESSAGE = (
    "Too many failed sign-in attempts for this username from your address. Try again in 15 minutes."
)
ADDRESS_MESSAGE = "Too many failed sign-in attempts from your address. Try again in 15 minutes."


@pytest.fixture(autouse=True)
def redis_cache():
    if "RedisCache" not in django_settings.CACHES["default"]["BACKEND"]:
        require_service("Redis", "REDIS_URL is not set: the cache is not Redis")
    assert django_settings.LOGIN_ADDRESS_FAILURE_LIMIT == ADDRESS_LIMIT
    assert django_settings.LOGIN_ADDRESS_WINDOW == timedelta(minutes=15)


def sign_in(username, password, *, address="10.0.0.1"):
    return Client().post(
        "/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def token(username, password, *, address="10.0.0.1"):
    return Client().post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def spray(count: int, *, address="10.0.0.1", via=sign_in) -> list:
    """One password tried on `count` different (unknown) usernames."""
    return [via(f"victim{i}", "Summer2026!", address=address) for i in range(count)]


def test_one_password_across_usernames_locks_the_address_on_the_page(user):
    answers = spray(ADDRESS_LIMIT - 1)
    assert all(answer.status_code == 200 for answer in answers)  # the form, with its error
    locked = spray(1)[0]
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(15 * 60)
    assert ADDRESS_MESSAGE in locked.content.decode()
    # Locked: a real account with its right password is refused from that address...
    answer = sign_in("dana", PASSWORD)
    assert answer.status_code == 429 and ADDRESS_MESSAGE in answer.content.decode()
    assert token("dana", PASSWORD).status_code == 429
    # ...and signs in from another address.
    assert sign_in("dana", PASSWORD, address="10.0.0.2").status_code == 302


def test_the_token_endpoint_counts_and_locks_alike(user):
    answers = spray(ADDRESS_LIMIT - 1, via=token)
    assert all(answer.status_code == 400 for answer in answers)
    locked = spray(1, via=token)[0]
    assert locked.status_code == 429
    assert locked.json() == {"detail": ADDRESS_MESSAGE, "retry_after": 900}
    # The page and the API share the count.
    assert sign_in("dana", PASSWORD).status_code == 429


def test_page_and_api_failures_add_up(user):
    spray(10, via=sign_in)
    spray(ADDRESS_LIMIT - 11, via=token)
    assert token("dana", PASSWORD).status_code == 200  # 19 failures: still open
    assert spray(1, via=token)[0].status_code == 429


def test_a_success_does_not_reset_the_address_count(user):
    spray(ADDRESS_LIMIT - 1)
    assert sign_in("dana", PASSWORD).status_code == 302
    assert spray(1)[0].status_code == 429


def test_a_person_who_mistypes_gets_the_unchanged_message(user):
    for _ in range(4):
        assert sign_in("dana", "wrong").status_code == 200
    answer = token("dana", "wrong")
    assert answer.status_code == 429
    assert answer.json()["detail"] == PERSON_MESSAGE
    page = sign_in("dana", "wrong")
    assert PERSON_MESSAGE in page.content.decode()


def test_the_address_lock_lasts_the_cool_off_and_an_admin_lifts_it(user, settings):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=2)
    spray(ADDRESS_LIMIT)
    lock = "portal:login:locked:address:10.0.0.1"
    assert cache.get(lock)
    assert 60 < cache.ttl(lock) <= 120  # the cool-off, which Redis expires
    answer = sign_in("dana", PASSWORD)
    assert answer.status_code == 429 and answer["Retry-After"] == "120"
    address_lockout_clear("10.0.0.1")
    assert sign_in("dana", PASSWORD).status_code == 302
