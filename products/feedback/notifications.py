"""Telling people about feedback, once each: a new thread to the product's owners and
stewards; a reply or a status change to the thread's author and participants (everyone
who replied or changed its status), never to the person who did it. Each goes out as an
in-portal notification and an email.

Like incident notifications: the row is claimed first (`notified_at` set by a
conditional UPDATE), so a task delivered twice sends once; the in-portal notification's
key guards a second time. Runs in a Celery task enqueued after commit."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from portal.core.links import absolute_url
from portal.core.notifications import emails_send, notifications_create
from portal.core.people import display_name
from products.catalog.selectors import domain_managers
from products.choices import FeedbackStatus
from products.models import FeedbackComment, FeedbackStatusChange, FeedbackThread

FOOTER_TEAM = "You get this because you own or steward this product's domain in the portal."
FOOTER_PARTICIPANT = "You get this because you take part in this feedback thread."


def thread_path(thread: FeedbackThread) -> str:
    product = thread.product
    return reverse(
        "products:feedback-detail",
        kwargs={
            "domain_slug": product.domain.slug,
            "product_slug": product.slug,
            "thread_id": thread.pk,
        },
    )


def _name(user) -> str:
    return display_name(user, nobody="Someone")


def product_team_recipients(*, thread: FeedbackThread) -> list:
    """The product's named owners and the domain's owners and stewards (active users),
    without the thread's author."""
    product = thread.product
    User = get_user_model()
    return list(
        User.objects.filter(
            Q(owned_products=product)
            | Q(pk__in=domain_managers(domain_id=product.domain_id).values("pk")),
            is_active=True,
        )
        .exclude(pk=thread.author_id or 0)
        .distinct()
        .order_by("pk")
    )


def thread_participants(*, thread: FeedbackThread, exclude_user_id: int | None) -> list:
    """The author, everyone who replied and everyone who changed the status (active
    users), without `exclude_user_id` (who caused this notification)."""
    User = get_user_model()
    return list(
        User.objects.filter(
            Q(pk=thread.author_id or 0)
            | Q(pk__in=FeedbackComment.objects.filter(thread=thread).values("author_id"))
            | Q(pk__in=FeedbackStatusChange.objects.filter(thread=thread).values("by_id")),
            is_active=True,
        )
        .exclude(pk=exclude_user_id or 0)
        .distinct()
        .order_by("pk")
    )


def _deliver(*, users, title: str, body: str, thread: FeedbackThread, key: str, lines, footer):
    path = thread_path(thread)
    notified = notifications_create(
        users=users, title=title, body=body, url=path, product=thread.product, key=key
    )
    text = "\n".join([*lines, "", absolute_url(path), "", footer])
    emails_send(
        to=[user.email for user in notified],
        subject=f"[{thread.product.key}] {title}",
        body=text,
        what=key,
    )
    return notified


def _excerpt(text: str, limit: int = 400) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def feedback_thread_notify(*, thread_id: int) -> bool:
    claimed = FeedbackThread.objects.filter(pk=thread_id, notified_at__isnull=True).update(
        notified_at=timezone.now()
    )
    if not claimed:
        return False
    thread = FeedbackThread.objects.select_related("product__domain", "author").get(pk=thread_id)
    kind = thread.get_kind_display().lower()
    title = f"New {kind} on {thread.product.name}: {thread.title}"
    _deliver(
        users=product_team_recipients(thread=thread),
        title=title,
        body=f"{_name(thread.author)}: {_excerpt(thread.body, 200)}",
        thread=thread,
        key=f"feedback-thread:{thread.pk}",
        lines=[
            f"{_name(thread.author)} opened a {kind} on {thread.product.name} "
            f"({thread.product.key}):",
            "",
            thread.title,
            "",
            _excerpt(thread.body),
            "",
            f"Answer within {thread.product.feedback_response_days} business day(s), the "
            "product's response objective.",
        ],
        footer=FOOTER_TEAM,
    )
    return True


def feedback_comment_notify(*, comment_id: int) -> bool:
    claimed = FeedbackComment.objects.filter(pk=comment_id, notified_at__isnull=True).update(
        notified_at=timezone.now()
    )
    if not claimed:
        return False
    comment = FeedbackComment.objects.select_related(
        "author", "thread__product__domain", "thread__author"
    ).get(pk=comment_id)
    thread = comment.thread
    reopened = thread.status_changes.filter(
        created_at=comment.created_at, to_status=FeedbackStatus.OPEN
    ).exists()
    verb = "replied to and reopened" if reopened else "replied to"
    title = f"{_name(comment.author)} {verb} “{thread.title}”"
    _deliver(
        users=thread_participants(thread=thread, exclude_user_id=comment.author_id),
        title=title,
        body=_excerpt(comment.body, 200),
        thread=thread,
        key=f"feedback-comment:{comment.pk}",
        lines=[
            f"{_name(comment.author)} {verb} “{thread.title}” on {thread.product.name}:",
            "",
            _excerpt(comment.body),
        ],
        footer=FOOTER_PARTICIPANT,
    )
    return True


def feedback_status_notify(*, change_id: int) -> bool:
    claimed = FeedbackStatusChange.objects.filter(pk=change_id, notified_at__isnull=True).update(
        notified_at=timezone.now()
    )
    if not claimed:
        return False
    change = FeedbackStatusChange.objects.select_related(
        "by", "thread__product__domain", "thread__author"
    ).get(pk=change_id)
    thread = change.thread
    status = FeedbackStatus(change.to_status).label.lower()
    title = f"“{thread.title}” is {status}"
    lines = [f"{_name(change.by)} marked “{thread.title}” on {thread.product.name} {status}."]
    if change.note:
        lines += ["", _excerpt(change.note)]
    _deliver(
        users=thread_participants(thread=thread, exclude_user_id=change.by_id),
        title=title,
        body=_excerpt(change.note, 200),
        thread=thread,
        key=f"feedback-status:{change.pk}",
        lines=lines,
        footer=FOOTER_PARTICIPANT,
    )
    return True


FEEDBACK_NOTIFIERS = {
    "thread": lambda pk: feedback_thread_notify(thread_id=pk),
    "comment": lambda pk: feedback_comment_notify(comment_id=pk),
    "status": lambda pk: feedback_status_notify(change_id=pk),
}


def feedback_notify(*, what: str, object_id: int) -> bool:
    """The task's entry point: `what` is thread, comment or status."""
    notifier = FEEDBACK_NOTIFIERS.get(what)
    return notifier(object_id) if notifier else False
