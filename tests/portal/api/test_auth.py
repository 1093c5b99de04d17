"""Token sign-in for API and notebook clients: `POST /api/v1/auth/token/` exchanges a
username and password for an expiring token, stored only as a digest."""

from datetime import timedelta

import pytest
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken

from tests.factories import PASSWORD

TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture
def token(api_client, outsider) -> str:
    response = api_client.post(TOKEN_URL, {"username": "outsider", "password": PASSWORD})
    assert response.status_code == 200, response.json()
    return response.json()["token"]


def test_good_credentials_give_a_token_that_signs_requests_in(api_client, token):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api_client.get("/api/v1/domains/")
    assert response.status_code == 200


def test_the_token_expires(api_client, outsider):
    response = api_client.post(TOKEN_URL, {"username": "outsider", "password": PASSWORD})
    expiry = AuthToken.objects.get(user=outsider).expiry
    assert response.json()["expiry"]
    assert timezone.now() < expiry <= timezone.now() + timedelta(hours=10)


def test_the_token_is_stored_as_a_digest_only(token):
    stored = AuthToken.objects.get()
    assert stored.digest == hash_token(token)
    assert token not in (stored.digest, stored.token_key)
    assert len(stored.token_key) < len(token)  # only a short lookup prefix is kept


@pytest.mark.parametrize(
    "body",
    [
        {"username": "outsider", "password": "wrong"},
        {"username": "nobody", "password": PASSWORD},
    ],
)
def test_bad_credentials_are_400_without_saying_which_part(api_client, outsider, body):
    response = api_client.post(TOKEN_URL, body)
    assert response.status_code == 400
    assert response.json() == {"detail": "Unable to sign in with the username and password given."}
    assert not AuthToken.objects.exists()


def test_missing_fields_are_400_per_field(api_client, db):
    response = api_client.post(TOKEN_URL, {})
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_inactive_users_get_no_token(api_client, outsider):
    outsider.is_active = False
    outsider.save()
    response = api_client.post(TOKEN_URL, {"username": "outsider", "password": PASSWORD})
    assert response.status_code == 400


def test_no_credentials_is_401_with_a_token_challenge(api_client, db):
    response = api_client.get("/api/v1/products/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("header", ["Token not-a-real-token", "Token", "Token a b"])
def test_a_bad_token_is_401(api_client, token, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    assert api_client.get("/api/v1/domains/").status_code == 401


def test_an_expired_token_is_401(api_client, token):
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.get("/api/v1/domains/").status_code == 401


def test_the_browser_session_works_too(client, outsider):
    client.force_login(outsider)
    assert client.get("/api/v1/domains/").status_code == 200


def test_tokens_per_user_are_limited_and_expired_ones_make_room(api_client, outsider, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_LIMIT_PER_USER": 2}
    body = {"username": "outsider", "password": PASSWORD}
    assert api_client.post(TOKEN_URL, body).status_code == 200
    assert api_client.post(TOKEN_URL, body).status_code == 200
    refused = api_client.post(TOKEN_URL, body)
    assert refused.status_code == 403
    assert "most allowed" in refused.json()["detail"]
    AuthToken.objects.filter(user=outsider).update(expiry=timezone.now() - timedelta(seconds=1))
    assert api_client.post(TOKEN_URL, body).status_code == 200
    assert AuthToken.objects.filter(user=outsider).count() == 1
