"""Emails of the retirement workflow: one plain message per person told about a step
(RetirementEvent.recipients), so that grantees never see each other's addresses.

Exactly once per step: the event is claimed (`notified_at` set by a conditional UPDATE)
before anything is sent, so a task delivered twice sends nothing the second time. A
delivery failure is logged, never raised: a broken SMTP server must not undo a step.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.urls import reverse
from django.utils import timezone

from portal.core.links import absolute_url
from products.choices import RetirementEventKind
from products.models import DataProduct, RetirementEvent

logger = logging.getLogger(__name__)


def retirement_page_url(product: DataProduct) -> str:
    return absolute_url(
        reverse(
            "products:product-retirement",
            kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
        )
    )


def _day(value) -> str:
    return f"{value:%Y-%m-%d}" if value else "never"


def retirement_message(event: RetirementEvent) -> tuple[str, list[str]]:
    """The subject and body lines of the email telling people about `event`."""
    product = event.product
    proposal = event.proposal
    name = f"{product.name} ({product.key})"
    url = retirement_page_url(product)
    who = event.by.username if event.by_id else "The portal"
    kind = event.kind
    if kind == RetirementEventKind.FLAGGED:
        days = event.detail.get("days")
        last = event.detail.get("last_read_at")
        return f"[{product.key}] No data read in {days} days: retire it?", [
            f"Nobody has read the data of {name} in the last {days} days "
            f"(last read: {last[:10] if last else 'never'}).",
            "",
            "If nobody needs it any more, propose its retirement. The people who can read it "
            "are told and may object during a notice period; without objection it is "
            "deprecated, then retired, and its grants, share links and export schedules end.",
            f"Propose it here: {url}",
            "",
            f"If it is still needed, there is nothing to do: you will be asked again in "
            f"{days} days if it stays unread.",
            "",
            "You get this because you own this product in the portal.",
        ]
    if kind == RetirementEventKind.PROPOSED:
        return f"[{product.key}] Retirement proposed: {product.name}", [
            f"{who} proposes to retire {name}, which you can read.",
            "",
            f"Reason: {proposal.reason}",
            "",
            f"Unless someone objects by {proposal.notice_ends_at:%Y-%m-%d %H:%M} UTC, it will "
            f"be deprecated then and retired {settings.RETIREMENT_GRACE_DAYS} days later. "
            "Your access, share links and scheduled exports of it end when it is retired.",
            f"Still need it? Object here, saying why: {url}",
        ]
    if kind == RetirementEventKind.OBJECTED:
        return f"[{product.key}] Objection to retiring {product.name}", [
            f"{who} objects to the retirement of {name}:",
            "",
            event.message,
            "",
            "The retirement is on hold. Withdraw the proposal, or, once the notice period "
            f"ends on {proposal.notice_ends_at:%Y-%m-%d}, decide to proceed with a reason "
            f"that answers the objections: {url}",
        ]
    if kind == RetirementEventKind.WITHDRAWN:
        lines = [f"The proposal to retire {name} was withdrawn: it stays available."]
        if event.message:
            lines += ["", f"Why: {event.message}"]
        return f"[{product.key}] Retirement withdrawn: {product.name} stays", [*lines, "", url]
    if kind == RetirementEventKind.PROCEEDED:
        return f"[{product.key}] Retirement of {product.name} goes ahead", [
            f"{who} decided to retire {name} despite the objections:",
            "",
            event.message,
            "",
            f"It is deprecated now and will be retired {settings.RETIREMENT_GRACE_DAYS} days "
            "from today; your access, share links and scheduled exports of it end then.",
            url,
        ]
    if kind == RetirementEventKind.DEPRECATED:
        return f"[{product.key}] {product.name} is deprecated", [
            f"{name} is deprecated: nobody objected to its retirement.",
            "",
            f"It will be retired on {proposal.retire_at:%Y-%m-%d}; your access, share links "
            "and scheduled exports of it end then. Move to its successor before that date.",
            url,
        ]
    if kind == RetirementEventKind.RETIRED:
        return f"[{product.key}] {product.name} is retired", [
            f"{name} is retired. Your access to it, your share links and your scheduled "
            "exports of it have ended.",
            "",
            f"Reason for the retirement: {proposal.reason}",
            url,
        ]
    if kind == RetirementEventKind.BLOCKED:
        return f"[{product.key}] Retirement of {product.name} is waiting", [
            f"The next step of the retirement of {name} waits: its proposer can no longer "
            "change the product.",
            "",
            f"Withdraw the proposal, and propose again in your name if it should go on: {url}",
        ]
    return f"[{product.key}] Retirement: {event.get_kind_display()}", [event.message, url]


def retirement_event_notify(*, event_id: int) -> int:
    """Email the event's recipients, once. Returns how many emails went out (0: gone,
    already claimed by an earlier delivery, or nobody with an address)."""
    claimed = (
        RetirementEvent.objects.filter(pk=event_id, notified_at__isnull=True)
        .exclude(recipients=[])  # a step that tells nobody is never marked as told
        .update(notified_at=timezone.now())
    )
    if not claimed:
        return 0
    event = RetirementEvent.objects.select_related("product__domain", "proposal", "by").get(
        pk=event_id
    )
    addresses = sorted(
        set(
            get_user_model()
            .objects.filter(pk__in=event.recipients, is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
    )
    if not addresses:
        return 0
    subject, lines = retirement_message(event)
    body = "\n".join(lines)
    messages = [EmailMessage(subject=subject[:250], body=body, to=[to]) for to in addresses]
    try:
        with get_connection() as connection:
            return connection.send_messages(messages) or 0
    except Exception:  # an SMTP failure must not undo the step
        logger.exception("retirement email for event %s failed", event_id)
        return 0
