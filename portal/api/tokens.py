"""API tokens: django-rest-knox tokens (only a digest stored, each expiring) with the
portal's record of each (`portal.models.ApiToken`: a name, when it was last used).

One way to create a token, for the sign-in endpoint (`POST /api/v1/auth/token/`) and the
"API tokens" page (`/my/tokens/`) alike: `api_token_create`. Revoking deletes the knox
token, so the next request with it is refused (401). `TokenAuthentication` is knox's,
recording when a token was last used (at most one write a minute per token).

This module imports no DRF view: DRF imports it while loading its settings.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.models import AuthToken
from knox.settings import knox_settings

from portal.models import ApiToken

# The lifetimes offered on /my/tokens/, in days; those above API_TOKEN_MAX_TTL are left out.
TOKEN_LIFETIME_DAYS = (7, 30, 90)
TOKEN_NAME_MAX_LENGTH = 100
PASSWORD_TOKEN_NAME = "Signed in with a password (API)"
# Last use is recorded to the minute: a token used many times a minute writes once.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenRefused(Exception):
    """A token cannot be created; the message says why, in the holder's words."""


def token_lifetime_choices() -> list[int]:
    """The lifetimes (days) a person may choose for a new token, shortest first."""
    longest = settings.API_TOKEN_MAX_TTL
    offered = [days for days in TOKEN_LIFETIME_DAYS if timedelta(days=days) <= longest]
    return offered or [max(1, longest.days)]


def api_tokens_of(*, user) -> QuerySet[ApiToken]:
    """The user's tokens that still work, newest first, with their knox token."""
    return (
        ApiToken.objects.filter(token__user=user)
        .filter(Q(token__expiry__isnull=True) | Q(token__expiry__gt=timezone.now()))
        .select_related("token")
        .order_by("-token__created", "-pk")
    )


def api_token_create(*, user, name: str, lifetime: timedelta) -> tuple[ApiToken, str]:
    """A new token for `user`, valid for `lifetime`: its record and the token itself, to
    be shown once (only its digest is kept). Raises TokenRefused when the lifetime is
    longer than allowed or the user already holds the most tokens allowed."""
    name = " ".join(name.split())[:TOKEN_NAME_MAX_LENGTH]
    if not name:
        raise TokenRefused("Give the token a name, such as the notebook or job that uses it.")
    longest = max(settings.API_TOKEN_MAX_TTL, knox_settings.TOKEN_TTL)
    if lifetime <= timedelta(0) or lifetime > longest:
        raise TokenRefused(f"A token lives at most {longest.days} days.")
    with transaction.atomic():
        tokens = AuthToken.objects.select_for_update().filter(user=user)
        tokens.filter(expiry__lt=timezone.now()).delete()
        limit = knox_settings.TOKEN_LIMIT_PER_USER
        if limit is not None and len(tokens) >= limit:
            raise TokenRefused(
                f"You already hold {limit} valid tokens, the most allowed. Revoke one you "
                "no longer use on your API tokens page, or wait for one to expire."
            )
        token, secret = AuthToken.objects.create(user, expiry=lifetime)
        record = ApiToken.objects.create(token=token, name=name)
    return record, secret


def api_token_revoke(*, user, token_id: int) -> ApiToken | None:
    """Revoke the user's token `token_id` (deleting it: the next request with it is
    refused). None when the user holds no such token; another person's token is never
    touched."""
    record = ApiToken.objects.filter(pk=token_id, token__user=user).select_related("token").first()
    if record is None:
        return None
    record.token.delete()  # its record goes with it (CASCADE)
    return record


def api_token_used(*, token: AuthToken) -> None:
    """Note that `token` signed a request in now (to the minute)."""
    now = timezone.now()
    ApiToken.objects.filter(token_id=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
    ).update(last_used_at=now)


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's token authentication (expired tokens refused and deleted), recording when
    each token was last used for the API tokens page."""

    def validate_user(self, auth_token):
        user, token = super().validate_user(auth_token)
        api_token_used(token=token)
        return user, token
