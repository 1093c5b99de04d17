"""The API tokens page (`/my/tokens/`): a named token with an expiry, shown once; the
list of one's own tokens; revoking, which the API honours from the next request."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken

from portal.api.tokens import PASSWORD_TOKEN_NAME, api_token_create
from portal.models import ApiToken
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

PAGE = "/my/tokens/"
API = "/api/v1/domains/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_status(token: str) -> int:
    return Client().get(API, HTTP_AUTHORIZATION=f"Token {token}").status_code


def shown_token(html: str) -> str:
    (token,) = re.findall(r'id="new-token" type="text" readonly value="([^"]+)"', html)
    return token


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


def test_anonymous_is_sent_to_sign_in(db):
    response = Client().get(PAGE)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_new_token_is_shown_once_and_reads_the_api(alice):
    client = signed_in(alice)
    response = client.post(PAGE, {"name": "Churn notebook", "lifetime_days": "30"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    token = shown_token(html)
    assert "it is shown only once" in html
    assert api_status(token) == 200

    record = ApiToken.objects.select_related("token").get(token__user=alice)
    assert record.name == "Churn notebook"
    expected = timezone.now() + timedelta(days=30)
    assert abs((record.token.expiry - expected).total_seconds()) < 60
    assert token not in (record.token.digest, record.token.token_key)  # kept as a digest

    again = client.get(PAGE).content.decode()
    assert token not in again and 'id="new-token"' not in again
    assert "Churn notebook" in again


def test_the_list_shows_only_my_tokens_with_their_last_use(alice, outsider):
    _, mine = api_token_create(user=alice, name="Nightly job", lifetime=timedelta(days=7))
    api_token_create(user=outsider, name="Someone else's", lifetime=timedelta(days=7))
    assert api_status(mine) == 200  # records the last use

    page = signed_in(alice).get(PAGE).content.decode()
    assert "Nightly job" in page and "Someone else" not in page
    record = ApiToken.objects.get(name="Nightly job")
    assert record.last_used_at is not None
    assert f'datetime="{record.last_used_at:%Y-%m-%dT%H:%M}' in page
    assert "1 active" in page


def test_the_list_is_empty_with_a_next_step(alice):
    page = signed_in(alice).get(PAGE).content.decode()
    assert "You have no API tokens" in page and "0 active" in page


def test_the_list_takes_few_queries(alice, django_assert_max_num_queries):
    for number in range(5):
        api_token_create(user=alice, name=f"Token {number}", lifetime=timedelta(days=7))
    client = signed_in(alice)
    with django_assert_max_num_queries(4):  # session, user, tokens (with knox's row)
        assert client.get(PAGE).status_code == 200


def test_tokens_from_the_password_endpoint_are_listed_and_revocable(api_client, alice):
    response = api_client.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD})
    token = response.json()["token"]
    record = ApiToken.objects.get(token__user=alice)
    assert record.name == PASSWORD_TOKEN_NAME
    assert PASSWORD_TOKEN_NAME in signed_in(alice).get(PAGE).content.decode()
    signed_in(alice).post(f"{PAGE}{record.pk}/revoke/")
    assert api_status(token) == 401


def test_a_revoked_token_stops_working_at_once(alice):
    record, token = api_token_create(user=alice, name="Laptop", lifetime=timedelta(days=7))
    assert api_status(token) == 200
    client = signed_in(alice)
    response = client.post(f"{PAGE}{record.pk}/revoke/", follow=True)
    assert response.redirect_chain[-1][0] == PAGE
    assert "revoked" in response.content.decode()
    assert api_status(token) == 401
    assert not AuthToken.objects.filter(user=alice).exists()
    assert not ApiToken.objects.exists()


def test_an_expired_token_stops_working_at_once(alice):
    record, token = api_token_create(user=alice, name="Old", lifetime=timedelta(days=7))
    assert api_status(token) == 200
    AuthToken.objects.filter(pk=record.token_id).update(
        expiry=timezone.now() - timedelta(seconds=1)
    )
    assert api_status(token) == 401
    assert "Old" not in signed_in(alice).get(PAGE).content.decode()


def test_another_person_cannot_revoke_my_token(alice, outsider):
    record, token = api_token_create(user=alice, name="Mine", lifetime=timedelta(days=7))
    response = signed_in(outsider).post(f"{PAGE}{record.pk}/revoke/")
    assert response.status_code == 404
    assert api_status(token) == 200
    assert ApiToken.objects.filter(pk=record.pk).exists()


def test_revoking_needs_a_post(alice):
    record, token = api_token_create(user=alice, name="Mine", lifetime=timedelta(days=7))
    assert signed_in(alice).get(f"{PAGE}{record.pk}/revoke/").status_code == 405
    assert api_status(token) == 200


@pytest.mark.parametrize("lifetime", ["365", "0", "-7", "soon", ""])
def test_a_lifetime_not_offered_is_a_form_error(alice, lifetime):
    response = signed_in(alice).post(PAGE, {"name": "Too long", "lifetime_days": lifetime})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Choose one of the lifetimes offered." in html or "This field is required." in html
    assert 'value="Too long"' in html  # what was typed is kept
    assert not AuthToken.objects.filter(user=alice).exists()


def test_lifetimes_are_bounded_by_the_setting(alice, settings):
    settings.API_TOKEN_MAX_TTL = timedelta(days=30)
    client = signed_in(alice)
    page = client.get(PAGE).content.decode()
    assert 'value="30"' in page and 'value="90"' not in page
    response = client.post(PAGE, {"name": "Quarter", "lifetime_days": "90"})
    assert response.status_code == 400
    assert not AuthToken.objects.filter(user=alice).exists()


def test_a_blank_name_is_a_form_error(alice):
    response = signed_in(alice).post(PAGE, {"name": "   ", "lifetime_days": "7"})
    assert response.status_code == 400
    assert not AuthToken.objects.filter(user=alice).exists()


def test_the_token_limit_is_a_form_error(alice, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_LIMIT_PER_USER": 2}
    for number in range(2):
        api_token_create(user=alice, name=f"Token {number}", lifetime=timedelta(days=7))
    response = signed_in(alice).post(PAGE, {"name": "Third", "lifetime_days": "7"})
    assert response.status_code == 400
    assert "the most allowed" in response.content.decode()
    assert AuthToken.objects.filter(user=alice).count() == 2


def test_the_name_can_be_suggested_by_a_link(alice):
    page = signed_in(alice).get(PAGE, {"name": "Notebook: Orders"}).content.decode()
    assert 'value="Notebook: Orders"' in page


def test_the_way_back_is_kept_and_only_within_the_portal(alice):
    client = signed_in(alice)
    back = "/products/sales/orders/data/"
    assert f'name="next" value="{back}"' in client.get(PAGE, {"next": back}).content.decode()
    created = client.post(PAGE, {"name": "N", "lifetime_days": "7", "next": back})
    assert f'<a class="button" href="{back}">Back to the data</a>' in created.content.decode()
    for elsewhere in ("https://evil.example/", "//evil.example/", "javascript:alert(1)"):
        page = client.get(PAGE, {"next": elsewhere}).content.decode()
        assert "evil" not in page and "javascript:" not in page


def test_the_user_menu_links_to_the_tokens(alice):
    assert f'href="{PAGE}"' in signed_in(alice).get("/my/products/").content.decode()
