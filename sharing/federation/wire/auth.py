"""Signing in to the wire endpoint: the username, and an API token of that user as the
password (the tokens of /my/tokens/ and POST /api/v1/auth/token/).

The token is checked by the API's own authentication (portal.api.tokens
.TokenAuthentication, knox's: only a digest is stored, an expired token is refused and
deleted, an inactive user is refused; its last use is recorded). Only a digest is
stored, so the password must arrive in clear: the server asks for a cleartext password,
which is why it listens on a private address (no TLS in pg-mimic 0.1.3; see
docs/query.md)."""

from __future__ import annotations

from rest_framework.exceptions import AuthenticationFailed

from portal.api.tokens import TokenAuthentication
from sharing.federation.wire.threads import django_call

# Tokens are 64 hex characters; anything much longer is not one (and is not hashed).
MAX_TOKEN_CHARS = 256


@django_call
def wire_user_authenticate(*, username: str, token: str):
    """The active user named `username` whose API token `token` is, or None (an unknown
    user, a wrong, revoked or expired token, another person's token, an inactive user)."""
    if not username or not token or len(token) > MAX_TOKEN_CHARS or "\x00" in token:
        return None
    try:
        user, _ = TokenAuthentication().authenticate_credentials(token.encode())
    except AuthenticationFailed:
        return None
    if user.get_username() != username:
        return None
    return user
