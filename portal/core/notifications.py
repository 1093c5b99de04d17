"""In-portal notifications (the bell in the top bar) and the emails that go with them.

Any feature tells people something through `notifications_create` (or
`notification_create` for one person): one row per person, at most once per `key` (what
it is about, e.g. "feedback-comment:12"), so a task delivered twice notifies once. It
returns who was newly notified, and `emails_send` mails exactly those people. People
read their notifications on /notifications/; opening one marks it read
(`notifications_mark_read`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.mail import EmailMessage, get_connection
from django.db.models import QuerySet
from django.utils import timezone

from portal.models import Notification

logger = logging.getLogger(__name__)

TITLE_MAX = Notification._meta.get_field("title").max_length
BODY_MAX = Notification._meta.get_field("body").max_length


def _clip(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def notifications_create(
    *,
    users: Iterable,
    title: str,
    url: str = "",
    product=None,
    body: str = "",
    key: str = "",
) -> list:
    """Notify each active user once per `key` (no key: always). Returns the users newly
    notified (those who already had this key's notification are left out)."""
    people = {user.pk: user for user in users if user is not None and user.is_active}
    if not people:
        return []
    if key:
        already = set(
            Notification.objects.filter(key=key, user_id__in=list(people)).values_list(
                "user_id", flat=True
            )
        )
        people = {pk: user for pk, user in people.items() if pk not in already}
    now = timezone.now()
    rows = [
        Notification(
            user_id=pk,
            title=_clip(title, TITLE_MAX),
            body=_clip(body, BODY_MAX),
            url=url,
            product=product,
            key=key,
            created_at=now,
        )
        for pk in sorted(people)
    ]
    # The unique (user, key) constraint keeps a racing second delivery out.
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return [people[pk] for pk in sorted(people)]


def notification_create(
    *, user, title: str, url: str = "", product=None, body: str = "", key: str = ""
) -> Notification | None:
    """Notify one person (once per `key`); None when they had it already or are inactive."""
    created = notifications_create(
        users=[user], title=title, url=url, product=product, body=body, key=key
    )
    if not created:
        return None
    qs = Notification.objects.filter(user=user)
    qs = qs.filter(key=key) if key else qs
    return qs.order_by("-created_at", "-pk").first()


def notifications_mark_read(*, user, ids: Iterable[int] | None = None) -> int:
    """Mark the user's unread notifications read: the given ones, or all. Someone else's
    ids are ignored. Returns how many changed."""
    qs = Notification.objects.filter(user_id=user.pk, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.update(read_at=timezone.now())


def notifications_unread_count(*, user) -> int:
    if user is None or not user.is_authenticated:
        return 0
    return Notification.objects.filter(user_id=user.pk, read_at__isnull=True).count()


def notifications_for(*, user, unread: bool = False) -> QuerySet[Notification]:
    """The user's notifications, newest first (with their product and its domain)."""
    qs = Notification.objects.filter(user_id=user.pk).select_related("product__domain")
    if unread:
        qs = qs.filter(read_at__isnull=True)
    return qs.order_by("-created_at", "-pk")


def emails_send(*, to: Iterable[str], subject: str, body: str, what: str = "") -> int:
    """One message per address (recipients do not see each other), over one connection.
    A failure is logged, never raised: notifications must not undo the change that caused
    them. Returns how many were sent."""
    addresses = sorted({address for address in to if address})
    if not addresses:
        return 0
    messages = [
        EmailMessage(subject=subject[:250], body=body, to=[address]) for address in addresses
    ]
    try:
        connection = get_connection()
        return connection.send_messages(messages) or 0
    except Exception:  # an SMTP failure must not stop the caller
        logger.exception("email %s to %d recipient(s) failed", what or subject, len(addresses))
        return 0
