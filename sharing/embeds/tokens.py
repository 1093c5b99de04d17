"""Embed tokens: short JWTs a host application's backend signs with its private key.

The header names the key (`kid`); the portal holds only the public key (EmbedKey), so
it stores no secret. Claims: `embed` (the embed's id), `params` (the value of each
locked parameter), `aud` (settings.EMBED_TOKEN_AUDIENCE), `exp` at most
EMBED_TOKEN_MAX_SECONDS after `iat` (or after now), `jti`. The algorithm is the key's,
never the token's choice (no `none`, no HS256 with a public key as its secret).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q

from sharing.choices import EmbedKeyAlgorithm
from sharing.embeds.refusals import EmbedRefused
from sharing.models import Embed, EmbedDeniedToken, EmbedKey

PARAM_VALUE_MAX_CHARS = 200
TOKEN_MAX_CHARS = 8192
MIN_RSA_BITS = 2048


def public_key_load(pem: str, algorithm: str):
    """The key object of a PEM public key of `algorithm`, or ValidationError naming what
    does not fit (registering a key)."""
    try:
        key = load_pem_public_key((pem or "").strip().encode())
    except (ValueError, TypeError):
        raise ValidationError(
            {"public_key": "Paste a public key in PEM form (-----BEGIN PUBLIC KEY-----...)."}
        ) from None
    if algorithm == EmbedKeyAlgorithm.EDDSA and not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValidationError({"public_key": "This is not an Ed25519 public key."})
    if algorithm == EmbedKeyAlgorithm.RS256:
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValidationError({"public_key": "This is not an RSA public key."})
        if key.key_size < MIN_RSA_BITS:
            raise ValidationError({"public_key": f"An RSA key has at least {MIN_RSA_BITS} bits."})
    return key


@dataclass(frozen=True)
class EmbedToken:
    jti: str
    params: dict[str, str]
    kid: str
    expires_at: float

    @property
    def tenant(self) -> str:
        """The locked parameters' values, as the Usage tab counts viewers."""
        return ", ".join(f"{name}={value}" for name, value in sorted(self.params.items()))


def _refused(message: str) -> EmbedRefused:
    return EmbedRefused(401, message)


def _key_for(embed: Embed, kid: str) -> EmbedKey:
    key = (
        EmbedKey.objects.filter(kid=kid)
        .filter(Q(app__embed=embed) | Q(app__domain_id=embed.product.domain_id))
        .first()
    )
    if key is None:
        raise _refused(
            f"The token is signed with key {kid[:100]!r}, which no application of this embed "
            "has: register it (or sign with a registered key)."
        )
    return key


def _params(claims: dict, embed: Embed) -> dict[str, str]:
    given = claims.get("params") or {}
    if not isinstance(given, dict):
        raise _refused('The token\'s "params" claim must be an object of parameter values.')
    locked = embed.locked_params or {}
    unknown = sorted(set(given) - set(locked))
    if unknown:
        raise _refused(f"The token names parameter(s) this embed does not lock: {unknown}.")
    missing = sorted(set(locked) - set(given))
    if missing:
        raise _refused(f"The token lacks the value of locked parameter(s): {missing}.")
    values = {}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _refused(f"The value of {name!r} must be a string or a number.")
        text = str(value)
        if not text or len(text) > PARAM_VALUE_MAX_CHARS:
            raise _refused(f"The value of {name!r} must have 1 to 200 characters.")
        values[name] = text
    return values


def token_verify(token: str, embed: Embed, *, now: float | None = None) -> EmbedToken:
    """The verified token, or EmbedRefused(401) saying what is wrong with it."""
    if not token:
        raise _refused("Send the embed token: Authorization: Bearer <token>.")
    if len(token) > TOKEN_MAX_CHARS:
        raise _refused("The token is too long.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _refused("This is not a JWT.") from None
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refused('The token\'s header has no key id ("kid").')
    key = _key_for(embed, kid)
    if header.get("alg") != key.algorithm:
        raise _refused(f"Key {kid!r} signs with {key.algorithm}, not {header.get('alg')!r}.")
    now = time.time() if now is None else now
    leeway = settings.EMBED_CLOCK_LEEWAY_SECONDS
    try:
        claims = jwt.decode(
            token,
            key=public_key_load(key.public_key, key.algorithm),
            algorithms=[key.algorithm],
            audience=settings.EMBED_TOKEN_AUDIENCE,
            leeway=leeway,
            options={"require": ["exp", "aud", "jti", "embed"], "verify_iat": False},
        )
    except jwt.ExpiredSignatureError:
        raise _refused("The token has expired: sign a new one.") from None
    except jwt.InvalidAudienceError:
        raise _refused(
            f'The token is for another audience: sign it with "aud": '
            f'"{settings.EMBED_TOKEN_AUDIENCE}".'
        ) from None
    except jwt.MissingRequiredClaimError as exc:
        raise _refused(f"The token lacks the {exc.claim!r} claim.") from None
    except jwt.InvalidSignatureError:
        raise _refused("The token's signature does not match its key.") from None
    except (jwt.PyJWTError, ValidationError):
        raise _refused("The token is not valid.") from None
    if str(claims["embed"]) != str(embed.pk):
        raise _refused("The token is for another embed.")
    longest = settings.EMBED_TOKEN_MAX_SECONDS
    exp = claims["exp"]
    iat = claims.get("iat")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise _refused('The token\'s "exp" must be a number.')
    if exp - now > longest + leeway or (
        isinstance(iat, int | float) and not isinstance(iat, bool) and exp - iat > longest
    ):
        raise _refused(
            f"The token lives longer than {longest // 60} minutes: sign one that expires sooner."
        )
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 200:
        raise _refused('The token\'s "jti" must be a string of 1 to 200 characters.')
    params = _params(claims, embed)
    if EmbedDeniedToken.objects.filter(embed=embed, jti=jti).exists():
        raise _refused("This token was denied: sign a new one.")
    return EmbedToken(jti=jti, params=params, kid=kid, expires_at=float(exp))
