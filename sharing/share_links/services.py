"""Share links: a secret URL serving one product's data (or one export run's file) to
whoever holds it, without signing in, within its creator's access, until it expires, is
revoked or is used up.

- Who shares: admins and the domain's owners and stewards, and holders of a grant marked
  shareable (`access_decide(..., shareable_only=True)`), at creation and at every use:
  when the creator loses that access, the link stops working.
- The token: 256 bits from `secrets`, shown once; only its SHA-256 is stored.
- A live link's read is `read_plan(user=creator, columns=link columns, filter=link
  filter, shareable_only=True)`: the creator's own row filter and masking always apply on
  top of the link's.
- The download limit holds under concurrency: a use is one conditional UPDATE
  (`download_count + 1` where still usable), counted by its row count; the database's
  check constraint backs it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from products.catalog.selectors import port_for
from products.catalog.services.events import product_event_emit
from products.models import DataProduct, OutputPort
from sharing.access.decision import AccessDecision, share_decision
from sharing.access.filters import (
    FilterError,
    clauses_typed,
    filter_in_words,
    parse_filter,
    unknown_columns,
)
from sharing.access.services.common import audit, can_manage_access
from sharing.choices import FILE_FORMATS, AuditAction, Channel, ExportStatus
from sharing.models import ExportRun, ShareLink
from sharing.serving.reads import ReadPlan, read_plan

TOKEN_BYTES = 32  # 256 bits
TOKEN_HINT_CHARS = 6
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)
DEFAULT_DAYS = 7
MAX_DAYS = 90
NOTE_MAX_CHARS = 1000
MAX_DOWNLOADS_LIMIT = 1_000_000


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_new() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


# --- create ---------------------------------------------------------------------------


def _clean_expiry(
    *, expires_at: datetime | str | None, expires_in_days: int | str | None, now: datetime
) -> datetime:
    latest = now + timedelta(days=MAX_DAYS)
    if expires_at not in (None, "") and expires_in_days not in (None, ""):
        raise ValidationError({"expires_at": "Give an expiry date or a number of days, not both."})
    if expires_at not in (None, ""):
        when = parse_datetime(expires_at) if isinstance(expires_at, str) else expires_at
        if not isinstance(when, datetime):
            raise ValidationError({"expires_at": "Give a date and time (ISO 8601)."})
        if timezone.is_naive(when):
            when = timezone.make_aware(when, timezone.get_default_timezone())
        if when <= now:
            raise ValidationError({"expires_at": "The expiry is in the past: give a later one."})
        if when > latest + timedelta(minutes=1):  # a minute's grace for the clock
            raise ValidationError(
                {"expires_at": f"At most {MAX_DAYS} days from now: give an earlier expiry."}
            )
        return min(when, latest)
    if expires_in_days in (None, ""):
        return now + timedelta(days=DEFAULT_DAYS)
    try:
        days = int(expires_in_days)
    except (TypeError, ValueError):
        raise ValidationError({"expires_in_days": "Give a whole number of days."}) from None
    if days < 1:
        raise ValidationError({"expires_in_days": "At least 1 day: a link cannot expire now."})
    if days > MAX_DAYS:
        raise ValidationError({"expires_in_days": f"At most {MAX_DAYS} days."})
    return now + timedelta(days=days)


def _clean_max_downloads(value) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError({"max_downloads": "Give a whole number, or nothing."}) from None
    if number < 1:
        raise ValidationError({"max_downloads": "At least 1 download, or no limit."})
    if number > MAX_DOWNLOADS_LIMIT:
        raise ValidationError(
            {"max_downloads": f"At most {MAX_DOWNLOADS_LIMIT:,}, or leave it empty for no limit."}
        )
    return number


def _clean_note(note) -> str:
    text = (note or "").strip()
    if len(text) > NOTE_MAX_CHARS:
        raise ValidationError(
            {"note": f"At most {NOTE_MAX_CHARS} characters (this one has {len(text)})."}
        )
    return text


def _port_of(product: DataProduct, port_slug: str | None) -> OutputPort:
    port = port_for(product=product, slug=port_slug)
    if port is None:
        raise ValidationError(
            {
                "port": f"This product has no output port {port_slug!r}."
                if port_slug
                else "This product has no output port to share."
            }
        )
    return port


def _clean_scope(
    *, decision: AccessDecision, port: OutputPort, columns, row_filter
) -> tuple[list[str], list[dict]]:
    """The link's columns (explicit, within the sharer's) and row filter (on columns the
    sharer reads unmasked). The sharer's own row filter applies on top at every use."""
    known = list(port.columns.order_by("position", "name").values_list("name", flat=True))
    if not known:
        raise ValidationError({"port": "This port's schema is not known yet: refresh it first."})
    allowed = [name for name in known if decision.allows_column(name)]
    errors: dict[str, str] = {}
    if columns and (isinstance(columns, str) or not all(isinstance(name, str) for name in columns)):
        errors["columns"] = "Give a list of column names."
        names: list[str] = []
    else:
        names = list(dict.fromkeys(name for name in columns or [] if name))  # verbatim
    unknown = [name for name in names if name not in known]
    outside = [name for name in names if name in known and name not in allowed]
    if unknown:
        errors["columns"] = f"Unknown column(s) of {port.name}: {', '.join(unknown)}."
    elif outside:
        errors["columns"] = f"Outside your access, so you cannot share: {', '.join(outside)}."
    try:
        types = dict(port.columns.values_list("name", "data_type"))
        clauses = clauses_typed(parse_filter(row_filter), types)
    except FilterError as exc:
        errors["row_filter"] = str(exc)
        clauses = []
    unknown_filtered = unknown_columns(clauses, known)
    outside_filtered = sorted({c.column for c in clauses if c.column in known} - set(allowed))
    masked_filtered = sorted({c.column for c in clauses if c.column in decision.masked})
    if unknown_filtered:
        errors["row_filter"] = f"The filter names unknown column(s): {', '.join(unknown_filtered)}."
    elif outside_filtered:
        errors["row_filter"] = (
            "The filter names column(s) outside your access: "
            f"{', '.join(outside_filtered)}. A link's rows stay within yours."
        )
    elif masked_filtered:
        errors["row_filter"] = (
            f"You cannot filter on column(s) masked for you: {', '.join(masked_filtered)}."
        )
    if errors:
        raise ValidationError(errors)
    return names or allowed, [clause.as_dict() for clause in clauses]


def _clean_export_run(*, product: DataProduct, export_run, decision: AccessDecision) -> ExportRun:
    if not isinstance(export_run, ExportRun):
        run = (
            ExportRun.objects.select_related("schedule").filter(pk=export_run).first()
            if str(export_run).isdigit()
            else None
        )
    else:
        run = export_run
    if run is None or run.schedule.product_id != product.pk:
        raise ValidationError({"export_run": "There is no such export run of this product."})
    if not export_file_available(run):
        raise ValidationError(
            {
                "export_run": "This export run has no file to share: it did not succeed, or its "
                "file was removed by the schedule's retention."
            }  # fmt: skip
        )
    if not decision.all_columns:
        raise PermissionDenied(
            "An export file is shared by those who read every column and row of the product "
            "(its domain's owners and stewards, admins). Share a live link within your grant."
        )
    return run


def export_file_available(run: ExportRun) -> bool:
    return (
        run.status == ExportStatus.SUCCEEDED
        and bool(run.file_name)
        and run.pruned_at is None
        and default_storage.exists(run.file_name)
    )


def share_link_create(
    *,
    by,
    product: DataProduct,
    port_slug: str | None = None,
    columns: list[str] | None = None,
    row_filter: list | str | None = None,
    format: str | None = None,  # noqa: A002 - the field's name
    expires_at: datetime | str | None = None,
    expires_in_days: int | str | None = None,
    max_downloads: int | str | None = None,
    note: str | None = None,
    export_run: ExportRun | int | str | None = None,
    neutralise_formulas: bool = False,
) -> tuple[ShareLink, str]:
    """Create a link; returns it and its token, which is shown once and never stored.

    Raises PermissionDenied when `by` may not share the product, ValidationError (per
    field) for bad input. Nothing is written unless everything is valid.
    `neutralise_formulas`: a live CSV link's text cells that start like a formula get a
    `'` in front (an export run's file is shared as it was written)."""
    decision = share_decision(user=by, product=product)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)
    now = timezone.now()
    errors: dict[str, Any] = {}
    cleaned: dict[str, Any] = {}

    def collect(field: str, clean) -> None:
        try:
            cleaned[field] = clean()
        except ValidationError as exc:
            errors.update(exc.message_dict)

    collect(
        "expires_at",
        lambda: _clean_expiry(expires_at=expires_at, expires_in_days=expires_in_days, now=now),
    )
    collect("max_downloads", lambda: _clean_max_downloads(max_downloads))
    collect("note", lambda: _clean_note(note))
    run = None
    if export_run not in (None, ""):
        if columns or row_filter or port_slug:
            errors["columns"] = [
                "An export run's file is shared as it was written: give no columns, row "
                "filter or port with it."
            ]
        collect("export_run", lambda: _clean_export_run(
            product=product, export_run=export_run, decision=decision))  # fmt: skip
        run = cleaned.get("export_run")
        port = run.schedule.port if run else None
        fmt = run.schedule.format if run else ""
        if format not in (None, "", fmt) and run is not None:
            errors["format"] = [f"This export run's file is {fmt}: the format cannot change."]
        link_columns, link_filter = [], []
    else:
        fmt = format or "csv"
        if fmt not in FILE_FORMATS:
            errors["format"] = [f"Unknown format {fmt!r}: use one of {', '.join(FILE_FORMATS)}."]
        link_columns, link_filter, port = [], [], None
        try:
            port = _port_of(product, port_slug)
            link_columns, link_filter = _clean_scope(
                decision=decision, port=port, columns=columns, row_filter=row_filter
            )
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)

    token = token_new()
    with transaction.atomic():
        link = ShareLink.objects.create(
            token_hash=token_digest(token),
            token_hint=token[:TOKEN_HINT_CHARS],
            created_by=by,
            product=product,
            port=port,
            export_run=run,
            columns=link_columns,
            row_filter=link_filter,
            format=fmt,
            neutralise_formulas=bool(neutralise_formulas) and run is None,
            note=cleaned["note"],
            expires_at=cleaned["expires_at"],
            max_downloads=cleaned["max_downloads"],
        )
        audit(
            action=AuditAction.GRANT,
            by=by,
            product=product,
            columns=link_columns,
            row_filter=link_filter,
            detail={
                **share_link_detail(link),
                "token_hint": link.token_hint,
                "expires_at": link.expires_at.isoformat(),
                "max_downloads": link.max_downloads,
                "format": fmt,
                "neutralise_formulas": link.neutralise_formulas,
            },
            at=link.created_at,
        )
        _share_link_event_emit("portal.share_link.created", link)
    return link, token


def _share_link_event_emit(type: str, link: ShareLink, **extra: Any) -> None:  # noqa: A002
    """A link's event, for its creator and the product's managers: what it serves and
    until when; never its token (nor the token's first characters)."""
    product_event_emit(
        type,
        product=link.product,
        people=[link.created_by_id],
        data={
            "share_link_id": link.pk,
            "created_by": link.created_by.get_username(),
            "port": link.port.slug if link.port_id else "",
            "export_run_id": link.export_run_id,
            "columns": list(link.columns),
            "row_filter": filter_in_words(link.row_filter),
            "format": link.format,
            "expires_at": link.expires_at.isoformat(),
            "max_downloads": link.max_downloads,
            **extra,
        },
    )


# --- revoke ---------------------------------------------------------------------------


def can_revoke(*, user, link: ShareLink) -> bool:
    """The link's creator, and whoever manages the product's access."""
    return link.created_by_id == getattr(user, "pk", None) or can_manage_access(
        user=user, product=link.product
    )


def _revoke(*, link: ShareLink, by, reason: str, now: datetime) -> bool:
    """Revoke one link and audit it; False when it was already revoked."""
    updated = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=by, revoke_reason=reason
    )
    if not updated:
        return False
    link.revoked_at, link.revoked_by, link.revoke_reason = now, by, reason
    audit(
        action=AuditAction.REVOKE,
        by=by,
        product=link.product,
        detail={**share_link_detail(link), "reason": reason},
        at=now,
    )
    _share_link_event_emit(
        "portal.share_link.revoked",
        link,
        reason=reason,
        revoked_by=by.get_username() if getattr(by, "is_authenticated", False) else "",
    )
    return True


def share_link_revoke(
    *, link: ShareLink, by, reason: str = "", now: datetime | None = None
) -> ShareLink:
    """Revoke a link at once: its next use is a 404. Revoking twice is an error."""
    if not can_revoke(user=by, link=link):
        raise PermissionDenied("Only the link's creator and the product's managers revoke it.")
    now = now or timezone.now()
    reason = (reason or "").strip()[:500]
    with transaction.atomic():
        if not _revoke(link=link, by=by, reason=reason, now=now):
            raise ValidationError("This share link is already revoked.")
    return link


def share_links_revoke_for_product(
    *, product: DataProduct, by, reason: str, now: datetime | None = None
) -> list[int]:
    """Revoke every live link of a product (its retirement), each with the audit event of
    a manual revocation. The product's managers only. Returns the ids revoked."""
    if not can_manage_access(user=by, product=product):
        raise PermissionDenied("Only the product's managers revoke all of its share links.")
    now = now or timezone.now()
    reason = (reason or "").strip()[:500]
    revoked = []
    with transaction.atomic():
        links = ShareLink.objects.filter(product=product, revoked_at__isnull=True)
        links = links.select_related("created_by", "port")  # what each event names
        for link in links.select_for_update(of=("self",)).order_by("pk"):
            link.product = product
            if _revoke(link=link, by=by, reason=reason, now=now):
                revoked.append(link.pk)
    return revoked


# --- use ------------------------------------------------------------------------------


def share_link_detail(link: ShareLink) -> dict:
    """What every audit event of a link names: the link, and its export run if any."""
    detail = {"share_link": link.pk}
    if link.export_run_id:
        detail["export_run"] = link.export_run_id
    return detail


def _usable(link: ShareLink, now: datetime) -> bool:
    return (
        link.revoked_at is None
        and link.expires_at > now
        and (link.max_downloads is None or link.download_count < link.max_downloads)
    )


def _creator_may_serve(link: ShareLink) -> bool:
    """The creator may still share what the link serves (the same rule as at creation)."""
    decision = share_decision(user=link.created_by, product=link.product)
    if not decision.allowed:
        return False
    if link.export_run_id:
        return decision.all_columns and export_file_available(link.export_run)
    if link.port_id is None:
        return False
    filtered = {clause.get("column") for clause in link.row_filter}
    return all(decision.allows_column(name) for name in [*link.columns, *filtered]) and not (
        filtered & decision.masked
    )


def share_link_resolve(token: str) -> ShareLink | None:
    """The usable link of a token, or None: unknown, expired, revoked, used up, or its
    creator may no longer share the product. The caller cannot tell which."""
    if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
        return None
    link = (
        ShareLink.objects.select_related(
            "product__domain", "port", "export_run__schedule", "created_by"
        )
        .filter(token_hash=token_digest(token))
        .first()
    )
    if link is None or not _usable(link, timezone.now()) or not _creator_may_serve(link):
        return None
    return link


def share_link_consume(*, link: ShareLink) -> bool:
    """Take one use of the link, atomically: one conditional UPDATE in the database, so
    concurrent downloads never exceed the limit. False when the link is no longer usable
    (expired, revoked, used up by someone else in the meantime)."""
    now = timezone.now()
    taken = (
        ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True, expires_at__gt=now)
        .filter(Q(max_downloads__isnull=True) | Q(download_count__lt=F("max_downloads")))
        .update(download_count=F("download_count") + 1, last_used_at=now)
    )
    return taken == 1


def share_link_release(*, link: ShareLink) -> None:
    """Give back a use taken by `share_link_consume` when nothing could be served (the
    source failed before the first byte)."""
    ShareLink.objects.filter(pk=link.pk, download_count__gt=0).update(
        download_count=F("download_count") - 1
    )


def share_link_plan(*, link: ShareLink) -> ReadPlan:
    """The read a live link serves: its creator's read, narrowed to the link's columns and
    rows (the creator's own row filter and masking apply on top). Raises ReadRefused when
    the creator's access no longer covers it."""
    plan = read_plan(
        user=link.created_by,
        product=link.product,
        channel=Channel.SHARE_LINK,
        port_slug=link.port.slug,
        columns=list(link.columns) or None,
        filter=list(link.row_filter) or None,
        shareable_only=True,
    )
    plan.detail.update(share_link_detail(link))
    plan.neutralise_formulas = link.neutralise_formulas
    return plan


@dataclass
class ExportFile:
    name: str
    size: int
    rows: int | None
    sha256: str


def share_link_file(*, link: ShareLink) -> ExportFile:
    run = link.export_run
    return ExportFile(
        name=run.file_name,
        size=run.bytes if run.bytes is not None else default_storage.size(run.file_name),
        rows=run.rows,
        sha256=run.sha256,
    )


# --- lists ----------------------------------------------------------------------------


def share_links_of_user(*, user):
    """The user's links, newest first, with what the list shows."""
    return ShareLink.objects.filter(created_by_id=user.pk).select_related(
        "product__domain", "port", "export_run"
    )


def share_link_status(link: ShareLink, *, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at <= now:
        return "expired"
    if link.max_downloads is not None and link.download_count >= link.max_downloads:
        return "used_up"
    return "active"
