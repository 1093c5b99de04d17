"""Announcements: a product's owners tell its consumers something (information,
maintenance, a breaking change, a deprecation naming the replacement product), with an
optional start and end. Active ones (starts_at <= now < ends_at) show as a banner on the
product's pages; each is delivered once, after commit, to the product's current grantees
(user grants, and the members of granted groups) and followers, as an in-portal
notification and an email.

Who: the product's editors (the domain's owners and stewards, and admins) post and end
announcements; everyone who can see the product reads them.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from portal.core.links import absolute_url
from portal.core.notifications import emails_send, notifications_create
from portal.core.task_queue import enqueue_on_commit
from products.catalog.permissions import can_edit_product
from products.catalog.services.events import product_event_emit
from products.choices import AnnouncementKind, LifecycleStatus
from products.feedback.services.feedback import MAX_BODY_LENGTH, can_see_product
from products.feedback.services.follows import product_followers
from products.models import Announcement, DataProduct
from sharing.models import AccessGrant

MAX_TITLE_LENGTH = Announcement._meta.get_field("title").max_length
TITLE_REQUIRED = "Give the announcement a title: what changes, in a line."
# Most urgent first when several are active at once.
KIND_ORDER = (
    AnnouncementKind.DEPRECATION,
    AnnouncementKind.BREAKING_CHANGE,
    AnnouncementKind.MAINTENANCE,
    AnnouncementKind.INFO,
)


# --- selectors ---------------------------------------------------------------------------


def announcements_active(
    *, product: DataProduct, now: datetime | None = None
) -> list[Announcement]:
    """The product's announcements showing now, most urgent first (one query)."""
    now = now or timezone.now()
    active = list(
        Announcement.objects.filter(product=product, starts_at__lte=now)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .select_related("replacement__domain")
        .order_by("-starts_at", "-pk")
    )
    active.sort(key=lambda a: KIND_ORDER.index(AnnouncementKind(a.kind)))
    return active


def announcements_for_product(*, product: DataProduct) -> QuerySet[Announcement]:
    """Every announcement of the product, newest start first."""
    return (
        Announcement.objects.filter(product=product)
        .select_related("replacement__domain", "created_by")
        .order_by("-starts_at", "-pk")
    )


def announcement_get(*, product: DataProduct, announcement_id: int) -> Announcement:
    announcement = announcements_for_product(product=product).get(pk=announcement_id)
    announcement.product = product
    return announcement


def replacement_choices(*, product: DataProduct, user) -> QuerySet[DataProduct]:
    """Products a deprecation may name: published, visible to the author, not this one."""
    return (
        DataProduct.objects.visible_to(user)
        .filter(status=LifecycleStatus.PUBLISHED)
        .exclude(pk=product.pk)
        .select_related("domain")
        .order_by("domain__name", "name")
    )


# --- writes ------------------------------------------------------------------------------


def _require_editor(*, product: DataProduct, by) -> None:
    if not can_edit_product(user=by, product=product):
        raise PermissionDenied(
            "Only the product's owners and stewards, and admins, post announcements."
        )


def announcement_create(
    *,
    product: DataProduct,
    by,
    kind: str,
    title: str,
    body: str = "",
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    replacement: DataProduct | None = None,
) -> Announcement:
    """Post an announcement. It is delivered at once (a maintenance next week is worth
    knowing now) and shows as a banner from `starts_at` (default now) until `ends_at`."""
    _require_editor(product=product, by=by)
    errors: dict[str, str] = {}
    if kind not in AnnouncementKind.values:
        errors["kind"] = "Choose information, maintenance, breaking change or deprecation."
    title = " ".join((title or "").split())
    if not title:
        errors["title"] = TITLE_REQUIRED
    elif len(title) > MAX_TITLE_LENGTH:
        errors["title"] = f"At most {MAX_TITLE_LENGTH} characters."
    body = (body or "").strip()
    if len(body) > MAX_BODY_LENGTH:
        errors["body"] = f"At most {MAX_BODY_LENGTH:,} characters (this one has {len(body):,})."
    now = timezone.now()
    starts_at = starts_at or now
    if ends_at is not None:
        if ends_at <= now:
            errors["ends_at"] = "The end is in the past: nobody would see this announcement."
        elif ends_at <= starts_at:
            errors["ends_at"] = "The end must come after the start."
    if kind == AnnouncementKind.DEPRECATION:
        if replacement is None:
            errors["replacement"] = (
                "A deprecation names the product consumers should move to. Choose it."
            )
        elif replacement.pk == product.pk:
            errors["replacement"] = "A product cannot replace itself: choose another product."
        elif replacement.status != LifecycleStatus.PUBLISHED or not can_see_product(
            user=by, product=replacement
        ):
            errors["replacement"] = (
                "Choose a published product every consumer can see as the replacement."
            )
    elif replacement is not None:
        errors["replacement"] = "Only a deprecation names a replacement product."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        announcement = Announcement.objects.create(
            product=product,
            kind=kind,
            title=title,
            body=body,
            starts_at=starts_at,
            ends_at=ends_at,
            replacement=replacement,
            created_by=by,
            created_at=now,
        )
        enqueue_on_commit("products.tasks.announcement_deliver", announcement.pk)
        product_event_emit(
            "portal.announcement.posted",
            product=product,
            data={
                "announcement_id": announcement.pk,
                "kind": announcement.kind,
                "title": announcement.title,
                "body": announcement.body,
                "starts_at": announcement.starts_at.isoformat(),
                "ends_at": announcement.ends_at.isoformat() if announcement.ends_at else None,
                "replacement": replacement.key if replacement is not None else "",
                "announcement_url": absolute_url(announcement_path(announcement)),
                "posted_by": by.get_username(),
            },
        )
    return announcement


def announcement_end(*, announcement: Announcement, by) -> Announcement:
    """Stop showing an announcement now (one not started yet ends before it starts)."""
    _require_editor(product=announcement.product, by=by)
    now = timezone.now()
    if announcement.ends_at is not None and announcement.ends_at <= now:
        raise ValidationError({"ends_at": "This announcement has ended already."})
    announcement.ends_at = now
    if announcement.starts_at > now:
        announcement.starts_at = now
    announcement.save(update_fields=["ends_at", "starts_at"])
    return announcement


# --- delivery ----------------------------------------------------------------------------


def announcement_recipients(*, announcement: Announcement, now: datetime | None = None) -> list:
    """Active users holding a current grant on the product (directly or through a group)
    or following it, without the author. Followers who can no longer see the product are
    left out."""

    now = now or timezone.now()
    product = announcement.product
    # The conditions of sharing.access.decision.grants_active_for, for every grantee at once.
    active = AccessGrant.objects.filter(
        product=product, revoked_at__isnull=True, expires_at__gt=now
    )
    grantees = get_user_model().objects.filter(
        Q(pk__in=active.filter(user__isnull=False).values("user_id"))
        | Q(groups__in=active.filter(group__isnull=False).values("group_id")),
        is_active=True,
    )
    people = {user.pk: user for user in grantees.distinct()}
    for user in product_followers(product=product):
        people.setdefault(user.pk, user)
    people.pop(announcement.created_by_id, None)
    return [people[pk] for pk in sorted(people)]


def announcement_path(announcement: Announcement) -> str:
    return announcement.product.get_absolute_url() + f"#announcement-{announcement.pk}"


def announcement_deliver(*, announcement_id: int) -> bool:
    """Deliver once (claimed by a conditional UPDATE of `delivered_at`): an in-portal
    notification and an email to each recipient. Returns whether this call delivered."""

    claimed = Announcement.objects.filter(pk=announcement_id, delivered_at__isnull=True).update(
        delivered_at=timezone.now()
    )
    if not claimed:
        return False
    announcement = Announcement.objects.select_related(
        "product__domain", "replacement__domain", "created_by"
    ).get(pk=announcement_id)
    product = announcement.product
    kind = announcement.get_kind_display()
    title = f"{kind} on {product.name}: {announcement.title}"
    recipients = announcement_recipients(announcement=announcement)
    path = announcement_path(announcement)
    replacement = announcement.replacement
    summary = ""
    if replacement is not None:
        summary = f"Move to {replacement.name} ({replacement.key})."
    notified = notifications_create(
        users=recipients,
        title=title,
        body=summary or announcement.body[:200],
        url=path,
        product=product,
        key=f"announcement:{announcement.pk}",
    )
    lines = [f"{kind} on {product.name} ({product.key}): {announcement.title}", ""]
    when = f"From {announcement.starts_at:%Y-%m-%d %H:%M} UTC"
    if announcement.ends_at:
        when += f" until {announcement.ends_at:%Y-%m-%d %H:%M} UTC"
    lines += [when + ".", ""]
    if announcement.body:
        lines += [announcement.body, ""]
    if replacement is not None:
        lines += [
            f"The replacement is {replacement.name} ({replacement.key}): "
            f"{absolute_url(replacement.get_absolute_url())}",
            "",
        ]
    lines += [
        absolute_url(path),
        "",
        "You get this because you have access to this product or follow it in the portal.",
    ]
    emails_send(
        to=[user.email for user in notified],
        subject=f"[{product.key}] {title}",
        body="\n".join(lines),
        what=f"announcement {announcement.pk}",
    )
    Announcement.objects.filter(pk=announcement.pk).update(recipient_count=len(recipients))
    return True
