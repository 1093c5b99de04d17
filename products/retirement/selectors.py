"""Reads of the retirement workflow for pages and the API: a product's proposal in
progress (the product page's banner), and everything its retirement page shows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone

from products.catalog.permissions import can_edit_product
from products.models import DataProduct, RetirementEvent, RetirementObjection, RetirementProposal
from products.retirement.services import (
    retirement_objection_refusal,
    retirement_open_proposal,
    unused_days,
)
from products.usage.selectors import product_is_unused

EVENTS_SHOWN = 100


def days_left(until: datetime | None, *, now: datetime | None = None) -> int | None:
    """Whole days (rounded up) until `until`; 0 once it has passed."""
    if until is None:
        return None
    seconds = (until - (now or timezone.now())).total_seconds()
    return max(0, math.ceil(seconds / 86400))


def retirement_banner(*, product: DataProduct, can_edit: bool, now: datetime | None = None) -> dict:
    """What the product page says about retirement: the proposal in progress (everyone
    sees it), or, to its editors, that the product is unused and may be proposed for
    retirement. One query, two for editors of a product without a proposal."""
    proposal = retirement_open_proposal(product=product)
    flagged = bool(
        can_edit
        and proposal is None
        and product_is_unused(product=product, days=unused_days(), now=now)
    )
    return {
        "retirement_proposal": proposal,
        "retirement_days_left": days_left(proposal.notice_ends_at if proposal else None, now=now),
        "retirement_flagged": flagged,
        "unused_days": unused_days(),
    }


@dataclass
class RetirementOverview:
    product: DataProduct
    proposal: RetirementProposal | None  # the latest, in progress or not
    objections: list[RetirementObjection]
    events: list[RetirementEvent]
    can_edit: bool
    unused: bool
    unused_days: int
    can_object: bool = False
    objection_refusal: str = ""
    has_objected: bool = False
    notice_days_left: int | None = None
    retire_days_left: int | None = None
    # Objectors' names are shown to the product's editors and to each objector (their own).
    show_names: bool = False
    extra: dict = field(default_factory=dict)


def retirement_overview(
    *, product: DataProduct, user, now: datetime | None = None
) -> RetirementOverview:
    now = now or timezone.now()
    can_edit = can_edit_product(user=user, product=product)
    proposal = (
        RetirementProposal.objects.filter(product=product)
        .select_related("proposed_by", "closed_by")
        .order_by("-proposed_at", "-pk")
        .first()
    )
    objections = (
        list(proposal.objections.select_related("user").order_by("at", "pk")) if proposal else []
    )
    events = list(
        RetirementEvent.objects.filter(product=product)
        .select_related("by")
        .order_by("-at", "-pk")[:EVENTS_SHOWN]
    )
    events.reverse()
    overview = RetirementOverview(
        product=product,
        proposal=proposal,
        objections=objections,
        events=events,
        can_edit=can_edit,
        unused=product_is_unused(product=product, days=unused_days(), now=now),
        unused_days=unused_days(),
        show_names=can_edit,
    )
    if proposal is not None:
        proposal.product = product
        overview.has_objected = any(o.user_id == user.pk for o in objections)
        overview.notice_days_left = days_left(proposal.notice_ends_at, now=now)
        overview.retire_days_left = days_left(proposal.retire_at, now=now)
        if proposal.is_open and not can_edit:
            refusal = retirement_objection_refusal(proposal=proposal, user=user, now=now)
            overview.can_object = refusal is None
            if refusal is not None:
                overview.objection_refusal = (
                    " ".join(refusal.messages)
                    if isinstance(refusal, ValidationError)
                    else str(refusal)
                )
    return overview
