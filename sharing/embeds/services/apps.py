"""Host applications of embeds and their public keys.

An application serves one embed (registered by whoever manages the embed) or every
embed of a domain's products (registered by the domain's owners and stewards, or an
admin). It holds public keys only: its backend signs tokens with the private key, which
never reaches the portal. Several keys at once let it rotate with overlap; a key removed
refuses its tokens from the next request on.
"""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from products.catalog.permissions import can_manage_domain, managers_only_message
from products.models import Domain
from sharing.choices import EmbedKeyAlgorithm
from sharing.embeds.services.embeds import can_manage_embed
from sharing.embeds.tokens import public_key_load
from sharing.models import Embed, EmbedApp, EmbedKey

KID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def can_manage_app(*, user, app: EmbedApp) -> bool:
    if app.embed_id is not None:
        return can_manage_embed(user=user, embed=app.embed)
    return can_manage_domain(user=user, domain=app.domain)


def _require(by, *, embed: Embed | None, domain: Domain | None) -> None:
    if embed is not None:
        if not can_manage_embed(user=by, embed=embed):
            raise PermissionDenied(
                "Only the embed's creator and its domain's owners and stewards register its "
                "applications."
            )
    elif not can_manage_domain(user=by, domain=domain):
        raise PermissionDenied(
            managers_only_message(domain, "register applications for its embeds")
        )


def _key(*, app: EmbedApp, kid: str, algorithm: str, public_key: str, by) -> EmbedKey:
    kid = (kid or "").strip() if isinstance(kid, str) else ""
    if not KID_PATTERN.fullmatch(kid):
        raise ValidationError(
            {
                "kid": "Give the key an id of 1 to 100 letters, digits and . _ : - (the kid "
                "your tokens' header names)."
            }
        )
    if algorithm not in EmbedKeyAlgorithm.values:
        raise ValidationError({"algorithm": "Choose EdDSA (Ed25519) or RS256."})
    public_key_load(public_key, algorithm)
    try:
        with transaction.atomic():
            return EmbedKey.objects.create(
                app=app,
                kid=kid,
                algorithm=algorithm,
                public_key=public_key.strip() + "\n",
                created_by=by,
            )
    except IntegrityError:
        raise ValidationError(
            {"kid": f"A key {kid!r} is registered already: give this one another id."}
        ) from None


@transaction.atomic
def embed_app_create(
    *,
    by,
    name: str,
    embed: Embed | None = None,
    domain: Domain | None = None,
    kid: str,
    algorithm: str,
    public_key: str,
    description: str = "",
) -> EmbedApp:
    """A host application of one embed or of a domain, with its first key."""
    if (embed is None) == (domain is None):
        raise ValidationError(
            {"embed": "Register the application for one embed or for one domain."}
        )
    _require(by, embed=embed, domain=domain)
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 120:
        raise ValidationError({"name": "Give the application a name of 1 to 120 characters."})
    app = EmbedApp.objects.create(
        name=name,
        embed=embed,
        domain=domain,
        description=str(description or "")[:2000],
        created_by=by,
    )
    _key(app=app, kid=kid, algorithm=algorithm, public_key=public_key, by=by)
    return app


def embed_key_add(*, app: EmbedApp, by, kid: str, algorithm: str, public_key: str) -> EmbedKey:
    """Another key of the application (rotation: sign with the new one, then remove the old)."""
    if not can_manage_app(user=by, app=app):
        raise PermissionDenied("Only the application's managers add its keys.")
    return _key(app=app, kid=kid, algorithm=algorithm, public_key=public_key, by=by)


def embed_key_remove(*, key: EmbedKey, by) -> None:
    """Tokens signed with the key are refused from the next request on."""
    if not can_manage_app(user=by, app=key.app):
        raise PermissionDenied("Only the application's managers remove its keys.")
    key.delete()


def embed_app_delete(*, app: EmbedApp, by) -> None:
    if not can_manage_app(user=by, app=app):
        raise PermissionDenied("Only the application's managers remove it.")
    app.delete()
