"""What a host application's backend does to show an embed, in Python: sign a token with
its private key (the portal never sees that key). Used by the demo's host page
(`manage.py embed_demo_host`), the tests and bench/embeds.py; docs/embeds.md has the same
in a few lines for other languages.
"""

from __future__ import annotations

import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.conf import settings


def key_pair(algorithm: str = "EdDSA") -> tuple[str, str]:
    """A new (private PEM, public PEM) pair: Ed25519 for EdDSA, 2048-bit RSA for RS256."""
    private = (
        ed25519.Ed25519PrivateKey.generate()
        if algorithm == "EdDSA"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def embed_token_sign(
    *,
    private_key: str,
    kid: str,
    embed_id,
    params: dict | None = None,
    algorithm: str = "EdDSA",
    seconds: int = 300,
    audience: str | None = None,
    jti: str | None = None,
    now: float | None = None,
    **claims,
) -> str:
    """A token for one embed and its locked parameter values, valid `seconds`."""
    issued = int(time.time() if now is None else now)
    payload = {
        "embed": str(embed_id),
        "params": params or {},
        "aud": audience or settings.EMBED_TOKEN_AUDIENCE,
        "iat": issued,
        "exp": issued + seconds,
        "jti": jti or uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(payload, private_key, algorithm=algorithm, headers={"kid": kid})
