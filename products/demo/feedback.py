"""The demo's feedback loop: a few feedback threads (answered, acknowledged, one left
unanswered past the response objective), two announcements (a maintenance window, and
the deprecation of Daily revenue naming Orders as its replacement), two follows, and the
in-portal notifications those would have sent, so the bell has something to show.

Written directly with past timestamps (a real thread is not eight days old the moment it
is seeded), marked as notified so that no email goes out. Idempotent: each row is found
by its natural key (product and title, user and product) before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from portal.models import Notification
from products.choices import AnnouncementKind, FeedbackKind, FeedbackStatus
from products.feedback.notifications import thread_path
from products.models import (
    Announcement,
    DataProduct,
    FeedbackComment,
    FeedbackStatusChange,
    FeedbackThread,
    Incident,
    ProductFollow,
)


@dataclass(frozen=True)
class Step:
    """A reply (`status` empty) or a status change, `hours` after the thread opened."""

    hours: float
    author: str
    body: str = ""
    status: str = ""


@dataclass(frozen=True)
class ThreadSpec:
    product: str  # key
    author: str
    kind: str
    title: str
    body: str
    days_ago: float
    steps: tuple[Step, ...] = ()
    link_incident_titled: str = ""  # part of an incident title of the product
    notify: tuple[str, ...] = ()  # usernames whose bell shows the latest step


THREADS = (
    ThreadSpec(
        product="sales.orders",
        author="analyst",
        kind=FeedbackKind.QUESTION,
        title="Why do refunds show as negative amounts?",
        body="In `amount` some order lines are negative, for example order 10482. Are "
        "those refunds, and should I **exclude** them when I sum revenue?",
        days_ago=8,
        steps=(
            Step(
                3.5,
                "owner",
                "Yes: a return is recorded as a negative order line on the day it is "
                "refunded. Keep them in: net revenue is the plain sum. For gross revenue "
                "filter `amount > 0`.",
            ),
            Step(5, "owner", "Answered above; the description now says so too.", "resolved"),
        ),
        notify=("analyst",),
    ),
    ThreadSpec(
        product="sales.orders",
        author="viewer",
        kind=FeedbackKind.ISSUE,
        title="Some order lines appear twice",
        body="Counting `order_id` and line number gives 37 more rows than distinct lines "
        "since last week's store import. My store dashboard double-counts them.",
        days_ago=1,
        steps=(
            Step(
                2,
                "owner",
                "Confirmed: the store loader re-sent one batch. We are removing the "
                "duplicates and adding a guard to the loader.",
                "acknowledged",
            ),
        ),
        link_incident_titled="unique",
        notify=("viewer",),
    ),
    ThreadSpec(
        product="sales.orders",
        author="analyst",
        kind=FeedbackKind.REQUEST,
        title="Add the promotion code to each order line",
        body="For the campaign uplift study I need to know which promotion, if any, "
        "applied to each line. Could the promotion code become a column?",
        days_ago=10,  # unanswered past the 3-business-day objective: lowers trust
    ),
    ThreadSpec(
        product="marketing.campaigns",
        author="viewer",
        kind=FeedbackKind.PRAISE,
        title="The channel breakdown saved our quarterly review",
        body="Having spend and conversions per channel in one place made the QBR deck a "
        "one-hour job. Thank you!",
        days_ago=3,
        steps=(Step(20, "steward", "Thank you, that is good to hear!", "resolved"),),
        notify=("viewer",),
    ),
)


@dataclass(frozen=True)
class AnnouncementSpec:
    product: str
    kind: str
    title: str
    body: str
    author: str
    ends_in_days: float | None = None
    replacement: str = ""
    notify: tuple[str, ...] = ()


ANNOUNCEMENTS = (
    AnnouncementSpec(
        product="sales.daily-revenue",
        kind=AnnouncementKind.DEPRECATION,
        title="Daily revenue (legacy) retires at the end of the quarter",
        body="It does not deduct returns. Compute daily revenue from **Orders** "
        "(`sum(amount)` per day and channel) and move your dashboards before then.",
        author="owner",
        replacement="sales.orders",
        notify=("viewer",),
    ),
    AnnouncementSpec(
        product="sales.orders",
        kind=AnnouncementKind.MAINTENANCE,
        title="The hourly load pauses on Sunday 02:00-04:00 UTC for a database upgrade",
        body="Data stays readable; rows ordered in that window appear after 04:00.",
        author="owner",
        ends_in_days=6,
        notify=("analyst",),
    ),
)

FOLLOWS = (("analyst", "sales.orders"), ("viewer", "sales.daily-revenue"))


@dataclass
class FeedbackSeedResult:
    created: dict[str, int] = field(default_factory=dict)
    overdue_products: list[str] = field(default_factory=list)


def _product(key: str) -> DataProduct:
    return DataProduct.objects.select_related("domain").get_by_key(key)


def _notify(users, names, *, title, url, product, key, at) -> None:
    for name in names:
        Notification.objects.get_or_create(
            user=users[name],
            key=key,
            defaults={"title": title, "url": url, "product": product, "created_at": at},
        )


def feedback_seed(
    *, users: dict, now: datetime | None = None, log: Callable[[str], None] = lambda _: None
) -> FeedbackSeedResult:
    """Write the demo's threads, announcements, follows and notifications that are
    missing. Returns what it created, and the products whose trust score an overdue
    thread it created should lower (the caller recomputes them)."""

    now = now or timezone.now()
    result = FeedbackSeedResult()

    def count(what: str) -> None:
        result.created[what] = result.created.get(what, 0) + 1

    with transaction.atomic():
        for spec in THREADS:
            product = _product(spec.product)
            if FeedbackThread.objects.filter(product=product, title=spec.title).exists():
                continue
            opened = now - timedelta(days=spec.days_ago)
            thread = FeedbackThread.objects.create(
                product=product,
                author=users[spec.author],
                kind=spec.kind,
                title=spec.title,
                body=spec.body,
                created_at=opened,
                last_activity_at=opened,
                notified_at=opened,
            )
            count("feedback threads")
            status = FeedbackStatus.OPEN
            for step in spec.steps:
                at = opened + timedelta(hours=step.hours)
                author = users[step.author]
                if thread.first_response_at is None and author.pk != thread.author_id:
                    thread.first_response_at, thread.first_response_by = at, author
                if step.status:
                    FeedbackStatusChange.objects.create(
                        thread=thread,
                        by=author,
                        from_status=status,
                        to_status=step.status,
                        note=step.body,
                        created_at=at,
                        notified_at=at,
                    )
                    status = step.status
                    thread.status = status
                    if status in (FeedbackStatus.RESOLVED, FeedbackStatus.DECLINED):
                        thread.closed_at, thread.resolution_note = at, step.body
                else:
                    FeedbackComment.objects.create(
                        thread=thread,
                        author=author,
                        body=step.body,
                        by_team=True,
                        created_at=at,
                        notified_at=at,
                    )
                thread.last_activity_at = at
            if spec.link_incident_titled:
                thread.incident = (
                    Incident.objects.filter(
                        product=product, title__icontains=spec.link_incident_titled
                    )
                    .order_by("-opened_at")
                    .first()
                )
            thread.save()
            if spec.steps and spec.notify:
                last = spec.steps[-1]
                verb = f"marked it {last.status}" if last.status else "replied"
                _notify(
                    users,
                    spec.notify,
                    title=f"{users[last.author].get_full_name()} {verb}: “{spec.title}”",
                    url=thread_path(thread),
                    product=product,
                    key=f"demo-feedback:{thread.pk}",
                    at=thread.last_activity_at,
                )
            if not spec.steps and spec.days_ago > product.feedback_response_days:
                result.overdue_products.append(spec.product)

        for spec in ANNOUNCEMENTS:
            product = _product(spec.product)
            if Announcement.objects.filter(product=product, title=spec.title).exists():
                continue
            announcement = Announcement.objects.create(
                product=product,
                kind=spec.kind,
                title=spec.title,
                body=spec.body,
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(days=spec.ends_in_days) if spec.ends_in_days else None,
                replacement=_product(spec.replacement) if spec.replacement else None,
                created_by=users[spec.author],
                created_at=now - timedelta(hours=1),
                delivered_at=now - timedelta(hours=1),
                recipient_count=len(spec.notify),
            )
            count("announcements")
            _notify(
                users,
                spec.notify,
                title=f"{announcement.get_kind_display()} on {product.name}: {spec.title}",
                url=product.get_absolute_url() + f"#announcement-{announcement.pk}",
                product=product,
                key=f"announcement:{announcement.pk}",
                at=announcement.created_at,
            )

        for username, key in FOLLOWS:
            _, created = ProductFollow.objects.get_or_create(
                user=users[username], product=_product(key)
            )
            if created:
                count("follows")
    if result.created:
        log("Feedback: " + ", ".join(f"{n} {what}" for what, n in result.created.items()))
    return result
