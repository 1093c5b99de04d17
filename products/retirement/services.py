"""Retiring unused products, step by step, each step recorded (RetirementEvent).

1. Flag: a daily task finds published and deprecated products with no data read for
   RETIREMENT_UNUSED_DAYS (products.usage.selectors.products_unused) and emails their
   owners once per product per such period.
2. Propose: an editor (the domain's owners and stewards, admins) proposes retirement
   with a reason and a notice period (default 30 days, at least 7). The audience (the
   product's current grantees, a team's grant counting each member, and its followers)
   is emailed.
3. Object: during the notice period anyone in the audience may object, once, with a
   reason. An objection stops the automatic advance; the editors then withdraw the
   proposal, or, once the notice period is over and having read the objections, proceed
   with a reason (the objectors are told).
4. Advance (a periodic task): a notice period that ended without objection deprecates
   the product (products.catalog.services.products.product_deprecate); RETIREMENT_GRACE_DAYS
   later the product is retired (product_retire) and, in the same transaction, its
   active grants are revoked (grant_revoke), its share links revoked and its export
   schedules ended (their beat entries removed).

The automatic steps act in the name of the proposer, whose right to change the product is
checked again at each step: when they have lost it the step waits (recorded once) until
another editor withdraws the proposal or proposes again. Every service takes `now` so
that tests move time forward by passing it, not by mocking clocks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from portal.core.task_queue import enqueue_on_commit
from products.catalog.permissions import can_edit_product, require_product_editor
from products.catalog.selectors import domain_managers
from products.catalog.services.products import product_deprecate, product_retire
from products.choices import (
    OPEN_RETIREMENT_STATUSES,
    PUBLIC_STATUSES,
    LifecycleStatus,
    RetirementEventKind,
    RetirementStatus,
)
from products.models import (
    DataProduct,
    ProductFollow,
    RetirementEvent,
    RetirementObjection,
    RetirementProposal,
)
from products.usage.selectors import products_unused
from sharing.access.services.grants import grant_revoke
from sharing.choices import AuditAction
from sharing.exports.services.schedules import export_schedule_end
from sharing.models import AccessEvent, AccessGrant, ExportSchedule
from sharing.share_links.services import share_links_revoke_for_product

NOTICE_DAYS_DEFAULT = 30
NOTICE_DAYS_MIN = 7
NOTICE_DAYS_MAX = 365
REASON_MAX_LENGTH = 2000


def unused_days() -> int:
    return settings.RETIREMENT_UNUSED_DAYS


def grace_days() -> int:
    return settings.RETIREMENT_GRACE_DAYS


# --- who is told, who may object ------------------------------------------------------


def retirement_audience(*, product: DataProduct, now: datetime | None = None) -> QuerySet:
    """The people a retirement concerns: they are emailed at each step and may object.

    Active users holding an active grant on the product, directly or through a team
    (group) grant, and the product's followers."""

    now = now or timezone.now()
    grants = AccessGrant.objects.filter(
        product=product, revoked_at__isnull=True, expires_at__gt=now
    )
    who = Q(pk__in=grants.filter(user__isnull=False).values("user_id")) | Q(
        groups__in=grants.filter(group__isnull=False).values("group_id")
    )
    who |= Q(pk__in=ProductFollow.objects.filter(product=product).values("user_id"))
    User = get_user_model()
    return User.objects.filter(is_active=True).filter(pk__in=User.objects.filter(who).values("pk"))


def retirement_objection_refusal(
    *, proposal: RetirementProposal, user, now: datetime | None = None
) -> PermissionDenied | ValidationError | None:
    """Why `user` may not object to the proposal now, as the error to raise (a
    PermissionDenied for people outside the audience, a ValidationError for a proposal
    that takes no objection from them any more); None when they may."""
    now = now or timezone.now()
    if not getattr(user, "is_authenticated", False):
        return PermissionDenied("Sign in to object.")
    if proposal.status not in (RetirementStatus.PROPOSED, RetirementStatus.OBJECTED):
        return ValidationError(
            {
                "proposal": f"This proposal is {proposal.get_status_display().lower()}: it "
                "takes no more objections."
            }
        )
    if now >= proposal.notice_ends_at:
        return ValidationError(
            {"proposal": f"The notice period ended on {proposal.notice_ends_at:%Y-%m-%d}."}
        )
    if not retirement_audience(product=proposal.product, now=now).filter(pk=user.pk).exists():
        return PermissionDenied(
            "Only people with access to this product's data, or who follow it, object to "
            "its retirement. Ask its owners if you depend on it."
        )
    if proposal.objections.filter(user_id=user.pk).exists():
        return ValidationError({"reason": "You have objected to this proposal already."})
    return None


def _managers(product: DataProduct) -> list[int]:
    return list(domain_managers(domain_id=product.domain_id).values_list("pk", flat=True))


def _owners(product: DataProduct) -> list[int]:
    """The product's owners; when it names none, its domain's owners and stewards."""
    owners = list(product.owners.filter(is_active=True).values_list("pk", flat=True))
    return owners or _managers(product)


# --- recording ------------------------------------------------------------------------


def _record(
    *,
    product: DataProduct,
    kind: str,
    at: datetime,
    proposal: RetirementProposal | None = None,
    by=None,
    message: str = "",
    detail: dict | None = None,
    recipients=(),
) -> RetirementEvent:
    """Write one step; when it tells people, email them after the commit (a Celery task
    that claims the event first, so a redelivery sends nothing twice)."""
    event = RetirementEvent.objects.create(
        product=product,
        proposal=proposal,
        kind=kind,
        by=by if getattr(by, "is_authenticated", False) else None,
        at=at,
        message=message,
        detail=detail or {},
        recipients=sorted(set(recipients)),
    )
    if event.recipients:
        enqueue_on_commit("products.tasks.retirement_notify", event.pk)
    return event


def _clean_reason(reason, *, field: str = "reason", what: str = "a reason") -> str:
    if reason is not None and not isinstance(reason, str):
        raise ValidationError({field: f"Give {what} as text."})
    text = (reason or "").strip()
    if not text:
        raise ValidationError({field: f"Give {what}."})
    if len(text) > REASON_MAX_LENGTH:
        raise ValidationError({field: f"At most {REASON_MAX_LENGTH} characters."})
    return text


def _clean_notice_days(notice_days) -> int:
    if notice_days in (None, ""):
        return NOTICE_DAYS_DEFAULT
    if isinstance(notice_days, bool):
        raise ValidationError({"notice_days": "Give a number of days."})
    try:
        days = int(notice_days)
    except (TypeError, ValueError):
        raise ValidationError({"notice_days": "Give a number of days."}) from None
    if days < NOTICE_DAYS_MIN:
        raise ValidationError(
            {"notice_days": f"At least {NOTICE_DAYS_MIN} days: consumers need time to object."}
        )
    if days > NOTICE_DAYS_MAX:
        raise ValidationError({"notice_days": f"At most {NOTICE_DAYS_MAX} days."})
    return days


def _locked_or_none(pk: int) -> RetirementProposal | None:
    """The proposal, read again under its row lock (its state may have changed since)."""
    return (
        RetirementProposal.objects.select_for_update(of=("self",))
        .select_related("product__domain", "proposed_by")
        .filter(pk=pk)
        .first()
    )


def _locked(proposal: RetirementProposal) -> RetirementProposal:
    locked = _locked_or_none(proposal.pk)
    if locked is None:
        raise ValidationError({"proposal": "This proposal no longer exists."})
    return locked


# --- the steps ------------------------------------------------------------------------


def retirement_open_proposal(*, product: DataProduct) -> RetirementProposal | None:
    return (
        RetirementProposal.objects.filter(product=product, status__in=OPEN_RETIREMENT_STATUSES)
        .select_related("proposed_by")
        .first()
    )


def retirement_flag_unused(*, now: datetime | None = None) -> int:
    """Email the owners of each unused product without an open proposal, once per
    RETIREMENT_UNUSED_DAYS: a `flagged` step records it. Returns how many were flagged.
    Safe to run twice at once: each product is claimed under its row lock."""
    now = now or timezone.now()
    days = unused_days()
    period_start = now - timedelta(days=days)
    candidates = (
        products_unused(days=days, now=now)
        .exclude(
            pk__in=RetirementProposal.objects.filter(status__in=OPEN_RETIREMENT_STATUSES).values(
                "product_id"
            )
        )
        .exclude(
            pk__in=RetirementEvent.objects.filter(
                kind=RetirementEventKind.FLAGGED, at__gt=period_start
            ).values("product_id")
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    flagged = 0
    for product_id in list(candidates):
        with transaction.atomic():
            product = (
                DataProduct.objects.select_for_update(of=("self",))
                .select_related("domain")
                .filter(pk=product_id)
                .first()
            )
            already = RetirementEvent.objects.filter(
                product_id=product_id, kind=RetirementEventKind.FLAGGED, at__gt=period_start
            ).exists()
            if product is None or already:
                continue

            last_read = (
                AccessEvent.objects.filter(product=product, action=AuditAction.READ)
                .order_by("-at")
                .values_list("at", flat=True)
                .first()
            )
            _record(
                product=product,
                kind=RetirementEventKind.FLAGGED,
                at=now,
                message=f"No data read in {days} days.",
                detail={
                    "days": days,
                    "last_read_at": last_read.isoformat() if last_read else None,
                },
                recipients=_owners(product),
            )
            flagged += 1
    return flagged


def retirement_propose(
    *,
    product: DataProduct,
    by,
    reason: str,
    notice_days: int | str | None = NOTICE_DAYS_DEFAULT,
    now: datetime | None = None,
) -> RetirementProposal:
    """Propose to retire a published or deprecated product, with a notice period during
    which its audience may object. Tells the audience."""
    require_product_editor(user=by, product=product, action="propose to retire this product")
    errors: dict = {}
    cleaned: dict = {}
    for field, clean in (
        ("reason", lambda: _clean_reason(reason)),
        ("notice_days", lambda: _clean_notice_days(notice_days)),
    ):
        try:
            cleaned[field] = clean()
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if product.status not in PUBLIC_STATUSES:
        errors["product"] = [
            f"{product.name} is {product.get_status_display().lower()}: only published and "
            "deprecated products are retired through a proposal."
        ]
    if errors:
        raise ValidationError(errors)
    now = now or timezone.now()
    with transaction.atomic():
        # One open proposal per product: the row lock serialises two proposers.
        DataProduct.objects.select_for_update(of=("self",)).filter(pk=product.pk).first()
        if retirement_open_proposal(product=product) is not None:
            raise ValidationError(
                {"product": f"{product.name} already has a retirement proposal in progress."}
            )
        proposal = RetirementProposal.objects.create(
            product=product,
            proposed_by=by,
            reason=cleaned["reason"],
            notice_days=cleaned["notice_days"],
            proposed_at=now,
            notice_ends_at=now + timedelta(days=cleaned["notice_days"]),
        )
        audience = list(retirement_audience(product=product, now=now).values_list("pk", flat=True))
        _record(
            product=product,
            proposal=proposal,
            kind=RetirementEventKind.PROPOSED,
            at=now,
            by=by,
            message=cleaned["reason"],
            detail={
                "notice_days": proposal.notice_days,
                "notice_ends_at": proposal.notice_ends_at.isoformat(),
                "audience": len(audience),
            },
            recipients=audience,
        )
    return proposal


def retirement_object(
    *, proposal: RetirementProposal, by, reason: str, now: datetime | None = None
) -> RetirementObjection:
    """Object to a proposal during its notice period (the audience only, once each).
    The proposal stops: its proposer and the domain's owners and stewards are told."""
    reason = _clean_reason(reason)
    now = now or timezone.now()
    with transaction.atomic():
        proposal = _locked(proposal)
        refusal = retirement_objection_refusal(proposal=proposal, user=by, now=now)
        if refusal is not None:
            raise refusal
        objection = RetirementObjection.objects.create(
            proposal=proposal, user=by, reason=reason, at=now
        )
        if proposal.status != RetirementStatus.OBJECTED:
            proposal.status = RetirementStatus.OBJECTED
            proposal.save(update_fields=["status"])
        tell = set(_managers(proposal.product))
        if proposal.proposed_by_id:
            tell.add(proposal.proposed_by_id)
        _record(
            product=proposal.product,
            proposal=proposal,
            kind=RetirementEventKind.OBJECTED,
            at=now,
            by=by,
            message=reason,
            recipients=tell,
        )
    return objection


def _objectors(proposal: RetirementProposal) -> list[int]:
    return list(proposal.objections.values_list("user_id", flat=True))


def retirement_withdraw(
    *, proposal: RetirementProposal, by, reason: str = "", now: datetime | None = None
) -> RetirementProposal:
    """Withdraw a proposal in progress (editors). A product already deprecated by it stays
    deprecated: its editors publish it again from its lifecycle if they wish."""
    require_product_editor(
        user=by, product=proposal.product, action="withdraw a retirement proposal"
    )
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    now = now or timezone.now()
    with transaction.atomic():
        proposal = _locked(proposal)
        if proposal.status not in OPEN_RETIREMENT_STATUSES:
            raise ValidationError(
                {"proposal": f"This proposal is {proposal.get_status_display().lower()}."}
            )
        _close(proposal=proposal, by=by, reason=reason, now=now)
    return proposal


def _close(*, proposal: RetirementProposal, by, reason: str, now: datetime) -> None:
    proposal.status = RetirementStatus.WITHDRAWN
    proposal.closed_at, proposal.closed_by, proposal.close_reason = now, by, reason
    proposal.save(update_fields=["status", "closed_at", "closed_by", "close_reason"])
    audience = set(
        retirement_audience(product=proposal.product, now=now).values_list("pk", flat=True)
    )
    _record(
        product=proposal.product,
        proposal=proposal,
        kind=RetirementEventKind.WITHDRAWN,
        at=now,
        by=by,
        message=reason,
        recipients=audience | set(_objectors(proposal)),
    )


def retirement_proceed(
    *, proposal: RetirementProposal, by, reason: str, now: datetime | None = None
) -> RetirementProposal:
    """The editors' answer to objections once the notice period is over: go ahead. The
    product is deprecated at once and retired after the grace period, as without
    objection; the reason is recorded and the audience and objectors are told."""
    require_product_editor(
        user=by, product=proposal.product, action="decide on a retirement proposal"
    )
    reason = _clean_reason(reason, what="a reason that answers the objections")
    now = now or timezone.now()
    with transaction.atomic():
        proposal = _locked(proposal)
        if proposal.status != RetirementStatus.OBJECTED:
            raise ValidationError(
                {"proposal": "Only a proposal with objections waits for this decision."}
            )
        if now < proposal.notice_ends_at:
            raise ValidationError(
                {
                    "proposal": "The notice period runs until "
                    f"{proposal.notice_ends_at:%Y-%m-%d %H:%M} UTC: others may still object. "
                    "Decide after it ends."
                }
            )
        audience = set(
            retirement_audience(product=proposal.product, now=now).values_list("pk", flat=True)
        )
        _record(
            product=proposal.product,
            proposal=proposal,
            kind=RetirementEventKind.PROCEEDED,
            at=now,
            by=by,
            message=reason,
            detail={"objections": len(_objectors(proposal))},
            recipients=audience | set(_objectors(proposal)),
        )
        _deprecate(proposal=proposal, actor=by, now=now)
    return proposal


def _actor(proposal: RetirementProposal, now: datetime):
    """The proposer when they may still change the product; otherwise None, and the
    wait is recorded once (with the domain's owners and stewards told)."""
    user = proposal.proposed_by
    if (
        user is not None
        and user.is_active
        and can_edit_product(user=user, product=proposal.product)
    ):
        return user
    waiting = proposal.events.filter(kind=RetirementEventKind.BLOCKED)
    last_step = proposal.events.exclude(kind=RetirementEventKind.BLOCKED).order_by("-at", "-pk")
    last_step_at = last_step.values_list("at", flat=True).first()
    if last_step_at is not None:
        waiting = waiting.filter(at__gte=last_step_at)
    if not waiting.exists():
        _record(
            product=proposal.product,
            proposal=proposal,
            kind=RetirementEventKind.BLOCKED,
            at=now,
            message="The proposer can no longer change this product: withdraw the proposal, "
            "or withdraw it and propose again in your name.",
            recipients=_managers(proposal.product),
        )
    return None


def _deprecate(*, proposal: RetirementProposal, actor, now: datetime) -> None:
    """Deprecate the product (unless it is already) and start the grace period."""
    product = proposal.product
    if product.status == LifecycleStatus.PUBLISHED:
        product = product_deprecate(product=product, by=actor)
        proposal.product = product
    proposal.status = RetirementStatus.DEPRECATED
    proposal.deprecated_at = now
    proposal.retire_at = now + timedelta(days=grace_days())
    proposal.save(update_fields=["status", "deprecated_at", "retire_at"])
    audience = retirement_audience(product=product, now=now).values_list("pk", flat=True)
    _record(
        product=product,
        proposal=proposal,
        kind=RetirementEventKind.DEPRECATED,
        at=now,
        by=actor,
        message=f"Deprecated; to be retired on {proposal.retire_at:%Y-%m-%d}.",
        detail={"retire_at": proposal.retire_at.isoformat(), "grace_days": grace_days()},
        recipients=audience,
    )


def _retire(*, proposal: RetirementProposal, actor, now: datetime) -> None:
    """Retire the product and end every way of reading it through the services that own
    them, so that each ends with its audit event and side effects as when a person ends
    it: grants (grant_revoke), share links (share_links_revoke_for_product), export
    schedules (export_schedule_end: its beat entry goes, its queued runs end). One
    transaction (the caller's); one recorded step each."""
    product = proposal.product
    # Told before their grants go: afterwards they would no longer be the audience.
    audience = list(retirement_audience(product=product, now=now).values_list("pk", flat=True))
    if product.status != LifecycleStatus.RETIRED:
        product = product_retire(product=product, by=actor)
        proposal.product = product
    why = f"{product.name} was retired (retirement proposal {proposal.pk}): {proposal.reason}"

    grants = list(
        AccessGrant.objects.filter(product=product, revoked_at__isnull=True, expires_at__gt=now)
        .select_related("product__domain", "user", "group")
        .order_by("pk")
    )
    for grant in grants:
        grant.product = product
        grant_revoke(grant=grant, by=actor, reason=why, now=now)
    _record(
        product=product,
        proposal=proposal,
        kind=RetirementEventKind.GRANTS_REVOKED,
        at=now,
        by=actor,
        message=f"{len(grants)} active grant(s) revoked.",
        detail={"count": len(grants), "grants": [grant.pk for grant in grants]},
    )

    links = share_links_revoke_for_product(product=product, by=actor, reason=why, now=now)
    _record(
        product=product,
        proposal=proposal,
        kind=RetirementEventKind.SHARE_LINKS_REVOKED,
        at=now,
        by=actor,
        message=f"{len(links)} share link(s) revoked.",
        detail={"count": len(links), "share_links": links},
    )

    # Their beat entries go: a retired product is never published again.
    schedules = list(
        ExportSchedule.objects.filter(product=product, ended_at__isnull=True)
        .select_related("product__domain")
        .order_by("pk")
    )
    for schedule in schedules:
        export_schedule_end(schedule=schedule, by=actor, reason=why, now=now)
    schedule_ids = [schedule.pk for schedule in schedules]
    _record(
        product=product,
        proposal=proposal,
        kind=RetirementEventKind.SCHEDULES_ENDED,
        at=now,
        by=actor,
        message=f"{len(schedule_ids)} export schedule(s) ended.",
        detail={"count": len(schedule_ids), "export_schedules": schedule_ids},
    )

    proposal.status = RetirementStatus.RETIRED
    proposal.retired_at = now
    proposal.save(update_fields=["status", "retired_at"])
    _record(
        product=product,
        proposal=proposal,
        kind=RetirementEventKind.RETIRED,
        at=now,
        by=actor,
        message=f"Retired: {len(grants)} grant(s), {len(links)} share link(s) and "
        f"{len(schedule_ids)} export schedule(s) ended.",
        recipients=audience,
    )


def retirement_advance(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic step: deprecate the products whose notice period ended without
    objection, retire those whose grace period ended. Each proposal in its own
    transaction under its row lock, its state checked again there: running twice, or
    twice at once, takes each step once. Returns how many of each were taken."""
    now = now or timezone.now()
    taken = {"deprecated": 0, "retired": 0, "waiting": 0, "withdrawn": 0}
    due_notice = RetirementProposal.objects.filter(
        status=RetirementStatus.PROPOSED, notice_ends_at__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due_notice):
        with transaction.atomic():
            proposal = _locked_or_none(pk)
            if (
                proposal is None
                or proposal.status != RetirementStatus.PROPOSED
                or proposal.notice_ends_at > now
            ):
                continue
            actor = _actor(proposal, now)
            if actor is None:
                taken["waiting"] += 1
                continue
            _deprecate(proposal=proposal, actor=actor, now=now)
            taken["deprecated"] += 1

    due_retire = RetirementProposal.objects.filter(
        status=RetirementStatus.DEPRECATED, retire_at__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due_retire):
        with transaction.atomic():
            proposal = _locked_or_none(pk)
            if (
                proposal is None
                or proposal.status != RetirementStatus.DEPRECATED
                or proposal.retire_at > now
            ):
                continue
            if proposal.product.status == LifecycleStatus.PUBLISHED:
                # Its editors published it again during the grace period: they keep it.
                _close(
                    proposal=proposal,
                    by=None,
                    reason="The product was published again during the grace period.",
                    now=now,
                )
                taken["withdrawn"] += 1
                continue
            actor = _actor(proposal, now)
            if actor is None:
                taken["waiting"] += 1
                continue
            _retire(proposal=proposal, actor=actor, now=now)
            taken["retired"] += 1
    return taken
