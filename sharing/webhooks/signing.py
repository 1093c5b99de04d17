"""The subscription's signing secret: made (Standard Webhooks `whsec_<base64>`), kept
encrypted at rest, and used to sign each request's `webhook-signature`.

The encryption key is derived (HKDF-SHA256) from WEBHOOK_SECRET_KEY, or SECRET_KEY when
that is not set: the database alone never holds what signs a request. Changing the key
makes stored secrets unreadable: rotate each subscription's secret then."""

from __future__ import annotations

import base64
import functools
import secrets
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


class SecretUnreadable(Exception):
    """The stored secret was encrypted with another key (WEBHOOK_SECRET_KEY changed)."""


@functools.cache
def _fernet(key_material: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"portal-webhooks", info=b"signing-secret"
    ).derive(key_material.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _cipher() -> Fernet:
    return _fernet(settings.WEBHOOK_SECRET_KEY or settings.SECRET_KEY)


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_encrypt(secret: str) -> str:
    return _cipher().encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "The signing secret cannot be read with this portal's key: rotate the secret."
        ) from None


def signature_headers(*, secret: str, message_id: str, timestamp: datetime, body: str) -> dict:
    """The Standard Webhooks headers of one request."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
    }
