"""Delta Sharing, the owners' side: shares, the tables in them, recipients and their
profile files. Pages and the API call these; the protocol server is
`sharing.delta_sharing.protocol`.

Rules:
- A share is managed by the person who created it, and by admins. Its recipients read
  with what the *creator* may share (`read_plan(..., shareable_only=True)`, the share
  right of share links), checked at every query and file fetch, so they never read more
  than the creator may share, and nothing once the creator may not.
- Only products whose access the person manages (owners, stewards, admins:
  `can_manage_access`) can be added to a share.
- A recipient's bearer token is shown once, in the profile file offered right after the
  recipient is created; only its SHA-256 is stored. Expiry: default 30 days, at most 365.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from products.catalog.permissions import managed_domains, user_is_admin
from products.catalog.selectors import port_for
from products.models import DataProduct, OutputPort
from sharing.access.filters import FilterError, clauses_typed, parse_filter, unknown_columns
from sharing.access.services.common import can_manage_access
from sharing.choices import Channel
from sharing.models import DeltaRecipient, DeltaShare, DeltaShareTable
from sharing.serving.reads import (
    ReadRefused,
    read_plan,
)

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
NAME_RULE = (
    "Use 1-100 lowercase letters, digits, '-' or '_', starting with a letter or digit "
    "(recipients address tables as share.schema.table)."
)
DEFAULT_SCHEMA = "default"
RECIPIENT_DEFAULT_DAYS = 30
RECIPIENT_MAX_DAYS = 365
TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 43 characters, 256 bits


def token_hash(token: str) -> str:
    """What is stored of a bearer token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- who may do what ---------------------------------------------------------------------


def can_use_delta_sharing(*, user) -> bool:
    """Admins, and owners and stewards of at least one domain, create shares."""
    if user_is_admin(user):
        return True
    return bool(user and user.is_authenticated) and managed_domains(user=user).exists()


def can_manage_share(*, user, share: DeltaShare) -> bool:
    return user_is_admin(user) or (
        bool(user and user.is_authenticated) and share.created_by_id == user.pk
    )


def _require_manager(*, user, share: DeltaShare) -> None:
    if not can_manage_share(user=user, share=share):
        raise PermissionDenied("Only the share's creator and admins change this share.")


# --- reads ----------------------------------------------------------------------------


def delta_shares_of(*, user) -> QuerySet[DeltaShare]:
    """The shares a person manages (all of them for admins), with their counts."""
    shares = (
        DeltaShare.objects.all()
        if user_is_admin(user)
        else DeltaShare.objects.filter(created_by_id=user.pk)
    )
    now = timezone.now()
    return shares.select_related("created_by").annotate(
        table_count=Count("tables", distinct=True),
        active_recipient_count=Count(
            "recipients",
            filter=Q(recipients__revoked_at__isnull=True, recipients__expires_at__gt=now),
            distinct=True,
        ),
    )


def delta_share_get(*, user, name: str) -> DeltaShare:
    """A share the person manages, by name (case-insensitive). Raises
    DeltaShare.DoesNotExist for an unknown share and for one of someone else."""
    return delta_shares_of(user=user).get(name__iexact=name)


def delta_share_tables(*, share: DeltaShare) -> QuerySet[DeltaShareTable]:
    return share.tables.select_related("share", "product__domain", "port").order_by(
        "schema", "name"
    )


def delta_share_recipients(*, share: DeltaShare) -> QuerySet[DeltaRecipient]:
    return share.recipients.select_related("created_by", "revoked_by")


def shareable_ports(*, user) -> QuerySet[OutputPort]:
    """The ports of the products whose access the person manages: what they may share."""
    ports = OutputPort.objects.select_related("product__domain").order_by(
        "product__domain__slug", "product__slug", "name"
    )
    if user_is_admin(user):
        return ports
    return ports.filter(product__domain__in=managed_domains(user=user))


# --- shares ---------------------------------------------------------------------------


def _clean_name(value, *, field: str, default: str | None = None) -> str:
    name = (value or "").strip().lower() or (default or "")
    if not name:
        raise ValidationError({field: "Give a name. " + NAME_RULE})
    if not NAME_PATTERN.match(name):
        raise ValidationError({field: f"{name!r} is not a valid name. {NAME_RULE}"})
    return name


def delta_share_create(*, by, name: str, description: str = "") -> DeltaShare:
    if not can_use_delta_sharing(user=by):
        raise PermissionDenied("Only domain owners, stewards and admins create Delta shares.")
    name = _clean_name(name, field="name")
    if DeltaShare.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": f"A share named {name!r} exists already: pick another."})
    try:
        with transaction.atomic():
            return DeltaShare.objects.create(
                name=name, description=(description or "").strip(), created_by=by
            )
    except IntegrityError:
        raise ValidationError({"name": f"A share named {name!r} exists already."}) from None


def delta_share_delete(*, share: DeltaShare, by) -> None:
    """Delete the share, its tables and recipients (their tokens stop working at once),
    and its cached files."""
    _require_manager(user=by, share=share)
    table_ids = list(share.tables.values_list("pk", flat=True))
    share.delete()
    transaction.on_commit(lambda: _remove_cached_files(table_ids))


def _remove_cached_files(table_ids: list[int]) -> None:
    for table_id in table_ids:
        shutil.rmtree(table_cache_dir(table_id), ignore_errors=True)


# --- tables ---------------------------------------------------------------------------


def _port_of(product: DataProduct, port: OutputPort | str | None) -> OutputPort:
    if isinstance(port, OutputPort):
        if port.product_id != product.pk:
            raise ValidationError({"port": "This port belongs to another product."})
        return port
    chosen = port_for(product=product, slug=port)
    if chosen is None:
        raise ValidationError(
            {"port": f"{product.key} has no port {port!r}." if port else "It has no port."}
        )
    return chosen


def _clean_table_columns(columns, known: list[str]) -> list[str]:
    if not columns:
        return []
    if isinstance(columns, str):
        columns = [part for part in columns.split(",")]
    if not all(isinstance(name, str) for name in columns):
        raise ValidationError({"columns": "Give a list of column names."})
    names = list(dict.fromkeys(name for name in columns if name))  # names verbatim
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValidationError({"columns": f"Unknown column(s) of this port: {', '.join(unknown)}."})
    return names


def _clean_table_filter(row_filter, known: list[str], types: dict[str, str]) -> list[dict]:
    try:
        clauses = clauses_typed(parse_filter(row_filter), types)
    except FilterError as exc:
        raise ValidationError({"row_filter": str(exc)}) from exc
    unknown = unknown_columns(clauses, known)
    if unknown:
        raise ValidationError(
            {"row_filter": f"The filter names unknown column(s): {', '.join(unknown)}."}
        )
    return [clause.as_dict() for clause in clauses]


def delta_share_table_add(
    *,
    share: DeltaShare,
    by,
    product: DataProduct,
    port: OutputPort | str | None = None,
    schema: str | None = None,
    name: str | None = None,
    columns=None,
    row_filter=None,
) -> DeltaShareTable:
    """Expose a product's port as `<share>.<schema>.<name>`, optionally narrowed to some
    columns and rows. Refused when the share's creator could not read it now."""

    _require_manager(user=by, share=share)
    if not can_manage_access(user=by, product=product):
        raise PermissionDenied(
            f"You do not manage access to {product.key}: only its domain's owners, stewards "
            "and admins share it."
        )
    port = _port_of(product, port)
    known = list(port.columns.order_by("position", "name").values_list("name", flat=True))
    if not known:
        raise ValidationError(
            {"port": f"The columns of port {port.slug!r} are not known yet: refresh its schema."}
        )
    schema = _clean_name(schema, field="schema", default=DEFAULT_SCHEMA)
    name = _clean_name(name, field="name", default=product.slug.replace(".", "_"))
    columns = _clean_table_columns(columns, known)
    row_filter = _clean_table_filter(
        row_filter, known, dict(port.columns.values_list("name", "data_type"))
    )
    if share.tables.filter(schema__iexact=schema, name__iexact=name).exists():
        raise ValidationError(
            {"name": f"The share has a table {schema}.{name} already: pick another name."}
        )
    try:
        # The creator's share right now: a table they could not share would only refuse
        # queries.
        read_plan(
            user=share.created_by,
            product=product,
            channel=Channel.DELTA_SHARING,
            port_slug=port.slug,
            columns=columns or None,
            filter=row_filter or None,
            limit=0,
            shareable_only=True,
        )
    except ReadRefused as exc:
        raise ValidationError(
            f"{share.created_by.username}, who created the share, cannot share this: {exc.message}"
        ) from None
    try:
        with transaction.atomic():
            return DeltaShareTable.objects.create(
                share=share,
                schema=schema,
                name=name,
                product=product,
                port=port,
                columns=columns,
                row_filter=row_filter,
            )
    except IntegrityError:
        raise ValidationError({"name": f"The share has a table {schema}.{name} already."}) from None


def delta_share_table_remove(*, table: DeltaShareTable, by) -> None:
    _require_manager(user=by, share=table.share)
    table_id = table.pk
    table.delete()
    transaction.on_commit(lambda: _remove_cached_files([table_id]))


# --- recipients -----------------------------------------------------------------------


def _clean_expiry(expires_at: datetime | None, *, now: datetime) -> datetime:
    if expires_at is None:
        return now + timedelta(days=RECIPIENT_DEFAULT_DAYS)
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at)
    if expires_at <= now:
        raise ValidationError({"expires_at": "The expiry is in the past: pick a later date."})
    if expires_at > now + timedelta(days=RECIPIENT_MAX_DAYS):
        raise ValidationError(
            {
                "expires_at": f"At most {RECIPIENT_MAX_DAYS} days from now: a recipient's "
                "token must expire within a year (create a new recipient then)."
            }
        )
    return expires_at


def delta_recipient_create(
    *, share: DeltaShare, by, name: str, expires_at: datetime | None = None
) -> tuple[DeltaRecipient, str]:
    """A recipient and its bearer token. The token is returned once and never stored:
    put it in the profile file (`delta_profile`) and forget it."""
    _require_manager(user=by, share=share)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Say who the recipient is (a person or an organisation)."})
    if len(name) > 200:
        raise ValidationError({"name": "At most 200 characters."})
    now = timezone.now()
    expires_at = _clean_expiry(expires_at, now=now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    recipient = DeltaRecipient.objects.create(
        share=share,
        name=name,
        token_hash=token_hash(token),
        token_hint=token[:6],
        expires_at=expires_at,
        created_by=by,
    )
    return recipient, token


def delta_recipient_revoke(*, recipient: DeltaRecipient, by) -> DeltaRecipient:
    """Revoke at once: the next request with the token answers 401. File URLs handed out
    before stay valid until they expire (at most `URL_MAX_AGE`)."""
    _require_manager(user=by, share=recipient.share)
    if recipient.revoked_at is not None:
        raise ValidationError(f"{recipient.name} was revoked already.")
    recipient.revoked_at = timezone.now()
    recipient.revoked_by = by
    recipient.save(update_fields=["revoked_at", "revoked_by"])
    return recipient


def delta_profile(*, recipient: DeltaRecipient, token: str, endpoint: str) -> dict:
    """The profile file a recipient gives the `delta-sharing` client or Spark."""
    expires = recipient.expires_at.astimezone(UTC)
    return {
        "shareCredentialsVersion": 1,
        "endpoint": endpoint.rstrip("/") + "/",
        "bearerToken": token,
        "expirationTime": expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


CACHE_FOLDER = "delta-sharing"


def cache_root() -> Path:
    return Path(settings.MEDIA_ROOT) / CACHE_FOLDER


def table_cache_dir(table_pk: int) -> Path:
    return cache_root() / f"table-{int(table_pk)}"
