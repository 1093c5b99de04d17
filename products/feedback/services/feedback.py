"""Feedback threads: consumers ask, report, request and praise; the product's team
answers. Who may do what:

- anyone signed in who can see the product (`DataProduct.objects.visible_to`) opens a
  thread and replies;
- the product's editors (the domain's owners and stewards, and admins:
  products.catalog.permissions.can_edit_product) change a thread's status (open -> acknowledged
  -> resolved or declined, with a note; reopen) and link an issue to an incident;
- a thread's author may withdraw it while it is open or acknowledged;
- replying to a closed thread (resolved, declined, withdrawn) reopens it, but only for its
  author or an editor: anyone else gets a 403.

The response objective: a product's team answers within `feedback_response_days`
business days (Monday to Friday, UTC dates). The first answer is the first reply, or
status-change note, written by a member of the owning domain other than the author.
Questions, issues and requests still open or acknowledged with no answer after the
objective are overdue and lower the trust score's support component
(products.trust.services.trust_score); praise expects no answer.

Every thread, reply and status change is notified once, after commit, by a Celery task
(products.feedback.notifications).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from portal.core.task_queue import enqueue_on_commit
from products.catalog.permissions import can_edit_product
from products.choices import (
    ANSWER_EXPECTED_KINDS,
    CLOSED_FEEDBACK_STATUSES,
    FEEDBACK_NOTE_REQUIRED,
    FEEDBACK_TRANSITIONS,
    UNRESOLVED_FEEDBACK_STATUSES,
    FeedbackKind,
    FeedbackStatus,
)
from products.models import (
    DataProduct,
    DomainMembership,
    FeedbackComment,
    FeedbackStatusChange,
    FeedbackThread,
    Incident,
)

if TYPE_CHECKING:
    import numpy as np

MAX_BODY_LENGTH = 20_000
MAX_TITLE_LENGTH = FeedbackThread._meta.get_field("title").max_length
# The median time to first response covers threads opened in this many days.
RESPONSE_STATS_DAYS = 90


# --- rules -------------------------------------------------------------------------------


def _is_signed_in(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def can_see_product(*, user, product: DataProduct) -> bool:
    if not _is_signed_in(user):
        return False
    return DataProduct.objects.visible_to(user).filter(pk=product.pk).exists()


def is_product_team(*, user, product: DataProduct) -> bool:
    """Members of the owning domain (owner, steward or member): their answers count as the
    team's response."""
    if not _is_signed_in(user):
        return False
    return DomainMembership.objects.filter(user_id=user.pk, domain_id=product.domain_id).exists()


def _require_visible(*, user, product: DataProduct) -> None:
    if not _is_signed_in(user):
        raise PermissionDenied("Sign in to give feedback.")
    if not can_see_product(user=user, product=product):
        raise PermissionDenied("You cannot see this product.")


def _clean_title(title: str) -> str:
    title = " ".join((title or "").split())
    if not title:
        raise ValidationError({"title": "Give the thread a title: what it is about, in a line."})
    if len(title) > MAX_TITLE_LENGTH:
        raise ValidationError({"title": f"At most {MAX_TITLE_LENGTH} characters."})
    return title


def clean_body(body: str, *, field: str = "body", empty: str = "Write something.") -> str:
    """A Markdown text people write: required, at most MAX_BODY_LENGTH characters."""
    body = (body or "").strip()
    if not body:
        raise ValidationError({field: empty})
    if len(body) > MAX_BODY_LENGTH:
        raise ValidationError(
            {field: f"At most {MAX_BODY_LENGTH:,} characters (this one has {len(body):,})."}
        )
    return body


def _clean_note(note: str) -> str:
    note = (note or "").strip()
    if len(note) > MAX_BODY_LENGTH:
        raise ValidationError({"note": f"At most {MAX_BODY_LENGTH:,} characters."})
    return note


def _check_incident(*, product: DataProduct, by, kind: str, incident: Incident) -> None:
    if not can_edit_product(user=by, product=product):
        raise PermissionDenied(
            "Only the product's owners and stewards, and admins, link a thread to an incident."
        )
    if kind != FeedbackKind.ISSUE:
        raise ValidationError({"incident": "Only an issue can be linked to an incident."})
    if incident.product_id != product.pk:
        raise ValidationError({"incident": f"Choose an incident of {product.name}."})


def _notify_after_commit(what: str, object_id: int) -> None:
    enqueue_on_commit("products.tasks.feedback_notify", what, object_id)


# --- the response objective (business days) ----------------------------------------------


def _day(moment: datetime) -> np.datetime64:
    # Lazy: numpy (~20 MB) only where response times are counted in business days.
    import numpy as np

    return np.datetime64(timezone.localtime(moment).date(), "D")


def response_due_date(*, opened_at: datetime, days: int) -> date:
    """The last day on which an answer is in time: `days` business days after the day the
    thread was opened (a thread opened on a weekend counts from the next Monday)."""
    # Lazy: numpy (~20 MB) only where response times are counted in business days.
    import numpy as np

    return np.busday_offset(_day(opened_at), days, roll="forward").astype(date)


def _late(opened: np.ndarray | np.datetime64, days: int, today: np.datetime64):
    """Business days after the due date, up to and including today (negative: not due)."""
    # Lazy: numpy (~20 MB) only where response times are counted in business days.
    import numpy as np

    due = np.busday_offset(opened, days, roll="forward")
    one = np.timedelta64(1, "D")
    return np.busday_count(due + one, today + one), due


def business_days_late(*, opened_at: datetime, days: int, now: datetime) -> int:
    """Business days past the due date, today included (0 when not late): a thread
    opened on a Monday with 3 days is due on Thursday, 1 day late on Friday, and 2 on
    the next Monday."""
    late, _ = _late(_day(opened_at), days, _day(now))
    return max(0, int(late))


def feedback_overdue(*, product: DataProduct, now: datetime | None = None) -> list[dict[str, Any]]:
    """Open or acknowledged threads of the product without an answer past the response
    objective, most overdue first (the trust score's evidence). One query."""
    # Lazy: numpy (~20 MB) only where response times are counted in business days.
    import numpy as np

    now = now or timezone.now()
    days = product.feedback_response_days
    # N business days are at least N calendar days: older threads are the only candidates.
    candidates = list(
        FeedbackThread.objects.filter(
            product_id=product.pk,
            kind__in=ANSWER_EXPECTED_KINDS,
            status__in=UNRESOLVED_FEEDBACK_STATUSES,
            first_response_at__isnull=True,
            created_at__lt=now - timedelta(days=days),
        )
        .order_by("created_at", "pk")
        .values("pk", "title", "kind", "status", "created_at")
    )
    if not candidates:
        return []
    opened = np.array([_day(row["created_at"]) for row in candidates], dtype="datetime64[D]")
    late, due = _late(opened, days, _day(now))
    rows = [
        {
            "id": row["pk"],
            "title": row["title"],
            "kind": row["kind"],
            "status": row["status"],
            "opened_at": row["created_at"].isoformat(),
            "due_date": due[i].astype(date).isoformat(),
            "business_days_overdue": int(late[i]),
        }
        for i, row in enumerate(candidates)
        if late[i] > 0
    ]
    rows.sort(key=lambda row: (-row["business_days_overdue"], row["id"]))
    return rows


@dataclass
class FeedbackSummary:
    """What the product page says about feedback: the objective, how fast the team
    answers (median over the last RESPONSE_STATS_DAYS days), and what is waiting."""

    response_days: int
    median_first_response_hours: float | None
    responded: int  # threads in the window with an answer
    unresolved: int  # open or acknowledged, any age
    overdue_ids: list[int] = field(default_factory=list)

    @property
    def overdue(self) -> int:
        return len(self.overdue_ids)


def feedback_summary(*, product: DataProduct, now: datetime | None = None) -> FeedbackSummary:
    """One query: threads of the window (for the median) and every unresolved one (for
    the counts and the overdue ones)."""
    now = now or timezone.now()
    since = now - timedelta(days=RESPONSE_STATS_DAYS)
    rows = list(
        FeedbackThread.objects.filter(product_id=product.pk)
        .filter(Q(created_at__gte=since) | Q(status__in=UNRESOLVED_FEEDBACK_STATUSES))
        .values_list("pk", "created_at", "first_response_at", "status", "kind")
    )
    waits = [
        (answered - opened).total_seconds() / 3600
        for _pk, opened, answered, _status, _kind in rows
        if answered is not None and opened >= since
    ]
    unresolved = [row for row in rows if row[3] in UNRESOLVED_FEEDBACK_STATUSES]
    days = product.feedback_response_days
    overdue = [
        pk
        for pk, opened, answered, _status, kind in unresolved
        if answered is None
        and kind in ANSWER_EXPECTED_KINDS
        and business_days_late(opened_at=opened, days=days, now=now) > 0
    ]
    return FeedbackSummary(
        response_days=days,
        median_first_response_hours=round(statistics.median(waits), 2) if waits else None,
        responded=len(waits),
        unresolved=len(unresolved),
        overdue_ids=overdue,
    )


# --- selectors ---------------------------------------------------------------------------


def feedback_threads_for_product(
    *, product: DataProduct, kind: str = "", status: str = ""
) -> QuerySet[FeedbackThread]:
    """A product's threads, most recently active first, each with `reply_count`. `status`
    is a FeedbackStatus, "unresolved" (open and acknowledged) or "closed"."""
    qs = FeedbackThread.objects.filter(product=product)
    if kind:
        qs = qs.filter(kind=kind)
    if status == "unresolved":
        qs = qs.filter(status__in=UNRESOLVED_FEEDBACK_STATUSES)
    elif status == "closed":
        qs = qs.filter(status__in=CLOSED_FEEDBACK_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    return (
        qs.select_related("author", "incident")
        .annotate(reply_count=Count("comments"))
        .order_by("-last_activity_at", "-pk")
    )


def feedback_threads_of_user(*, user, status: str = "") -> QuerySet[FeedbackThread]:
    """ "My feedback": threads the user opened or replied to, on products they can still
    see, most recently active first."""
    qs = FeedbackThread.objects.filter(
        Q(author_id=user.pk) | Q(comments__author_id=user.pk),
        product__in=DataProduct.objects.visible_to(user),
    )
    if status == "unresolved":
        qs = qs.filter(status__in=UNRESOLVED_FEEDBACK_STATUSES)
    elif status == "closed":
        qs = qs.filter(status__in=CLOSED_FEEDBACK_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    ids = qs.values("pk").distinct()
    return (
        FeedbackThread.objects.filter(pk__in=ids)
        .select_related("author", "product__domain")
        .annotate(reply_count=Count("comments"))
        .order_by("-last_activity_at", "-pk")
    )


def feedback_thread_get(*, product: DataProduct, thread_id: int) -> FeedbackThread:
    """One thread of a product (already fetched through the visibility rule);
    FeedbackThread.DoesNotExist otherwise."""
    thread = FeedbackThread.objects.select_related("author", "incident", "first_response_by").get(
        pk=thread_id, product=product
    )
    thread.product = product
    return thread


def feedback_thread_get_visible(*, user, thread_id: int) -> FeedbackThread:
    """A thread on a product the user can see; FeedbackThread.DoesNotExist otherwise (the
    same for a missing thread and a hidden one)."""
    return FeedbackThread.objects.select_related(
        "author", "incident", "first_response_by", "product__domain"
    ).get(pk=thread_id, product__in=DataProduct.objects.visible_to(user))


def feedback_timeline(*, thread: FeedbackThread) -> list[FeedbackComment | FeedbackStatusChange]:
    """The thread's replies and status changes in time order (two queries); each item has
    `item_type` "comment" or "status"."""
    comments = list(thread.comments.select_related("author").order_by("created_at", "pk"))
    changes = list(thread.status_changes.select_related("by").order_by("created_at", "pk"))
    for comment in comments:
        comment.item_type = "comment"
    for change in changes:
        change.item_type = "status"
    return sorted([*comments, *changes], key=lambda item: (item.created_at, item.item_type))


def feedback_incident_choices(*, product: DataProduct) -> QuerySet[Incident]:
    return Incident.objects.filter(product=product).order_by("-opened_at", "-pk")


# --- writes ------------------------------------------------------------------------------


def feedback_thread_create(
    *,
    product: DataProduct,
    by,
    kind: str,
    title: str,
    body: str,
    incident: Incident | None = None,
) -> FeedbackThread:
    """Open a thread; the product's owners and stewards are told (after commit)."""
    _require_visible(user=by, product=product)
    if kind not in FeedbackKind.values:
        raise ValidationError({"kind": "Choose question, issue, request or praise."})
    errors: dict[str, list[str]] = {}
    for clean in (lambda: _clean_title(title), lambda: clean_body(body)):
        try:
            clean()
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    if incident is not None:
        _check_incident(product=product, by=by, kind=kind, incident=incident)
    now = timezone.now()
    with transaction.atomic():
        thread = FeedbackThread.objects.create(
            product=product,
            author=by,
            kind=kind,
            title=_clean_title(title),
            body=clean_body(body),
            incident=incident,
            created_at=now,
            last_activity_at=now,
        )
        _notify_after_commit("thread", thread.pk)
    return thread


def _record_first_response(thread: FeedbackThread, *, by, at: datetime) -> bool:
    """Mark the thread answered by `by` if this is the team's first answer. Returns
    whether it was (the caller saves the thread)."""
    if thread.first_response_at is not None or by.pk == thread.author_id:
        return False
    if not is_product_team(user=by, product=thread.product):
        return False
    thread.first_response_at = at
    thread.first_response_by = by
    return True


def _was_overdue(thread: FeedbackThread, now: datetime) -> bool:
    return (
        thread.kind in ANSWER_EXPECTED_KINDS
        and thread.first_response_at is None
        and thread.status in UNRESOLVED_FEEDBACK_STATUSES
        and business_days_late(
            opened_at=thread.created_at, days=thread.product.feedback_response_days, now=now
        )
        > 0
    )


def _recompute_trust(product: DataProduct) -> None:
    """The trust score's support component counts overdue threads: ask trust (a feature
    above feedback) for a new snapshot once this answer commits, by task name."""
    enqueue_on_commit("products.tasks.trust_score_recompute", product.pk)


def feedback_comment_create(*, thread: FeedbackThread, by, body: str) -> FeedbackComment:
    """Reply in a thread. A reply to a closed thread reopens it: only its author or the
    product's editors may do that (PermissionDenied for anyone else)."""
    product = thread.product
    _require_visible(user=by, product=product)
    editor = can_edit_product(user=by, product=product)
    if thread.is_closed and not (by.pk == thread.author_id or editor):
        raise PermissionDenied(
            f"This thread is {thread.get_status_display().lower()}. Only its author or the "
            "product's owners can reopen it by replying; open a new thread instead."
        )
    body = clean_body(body, empty="Write a reply.")
    now = timezone.now()
    with transaction.atomic():
        thread = FeedbackThread.objects.select_for_update().get(pk=thread.pk)
        thread.product = product
        was_overdue = _was_overdue(thread, now)
        fields = ["last_activity_at"]
        if thread.is_closed:
            if not (by.pk == thread.author_id or editor):  # closed meanwhile
                raise PermissionDenied("This thread was closed meanwhile; reload the page.")
            # Recorded on the timeline; the reply's notification says it reopened it.
            FeedbackStatusChange.objects.create(
                thread=thread,
                by=by,
                from_status=thread.status,
                to_status=FeedbackStatus.OPEN,
                note="Reopened by a reply.",
                created_at=now,
                notified_at=now,
            )
            thread.status = FeedbackStatus.OPEN
            thread.closed_at = None
            thread.resolution_note = ""
            fields += ["status", "closed_at", "resolution_note"]
        responded = _record_first_response(thread, by=by, at=now)
        if responded:
            fields += ["first_response_at", "first_response_by"]
        comment = FeedbackComment.objects.create(
            thread=thread,
            author=by,
            body=body,
            by_team=is_product_team(user=by, product=product),
            created_at=now,
        )
        thread.last_activity_at = now
        thread.save(update_fields=fields)
        _notify_after_commit("comment", comment.pk)
    if responded and was_overdue:
        _recompute_trust(product)
    comment.thread = thread
    return comment


def feedback_status_change(
    *, thread: FeedbackThread, by, status: str, note: str = ""
) -> FeedbackThread:
    """Move a thread's status. Editors: open -> acknowledged -> resolved or declined (a
    note is required for those two), and reopen a closed thread. The author: withdraw an
    open or acknowledged thread. The author and participants are told (after commit)."""
    product = thread.product
    _require_visible(user=by, product=product)
    if status not in FeedbackStatus.values:
        raise ValidationError(
            {"status": "Choose open, acknowledged, resolved, declined or withdrawn."}
        )
    editor = can_edit_product(user=by, product=product)
    if status == FeedbackStatus.WITHDRAWN:
        if by.pk != thread.author_id:
            raise PermissionDenied("Only the thread's author withdraws it.")
    elif not editor:
        raise PermissionDenied(
            "Only the product's owners and stewards, and admins, change a thread's status."
        )
    note = _clean_note(note)
    now = timezone.now()
    with transaction.atomic():
        thread = FeedbackThread.objects.select_for_update().get(pk=thread.pk)
        thread.product = product
        current = FeedbackStatus(thread.status)
        if status == current:
            raise ValidationError({"status": f"The thread is {current.label.lower()} already."})
        if status == FeedbackStatus.WITHDRAWN:
            allowed = UNRESOLVED_FEEDBACK_STATUSES
            if current not in allowed:
                raise ValidationError(
                    {"status": f"A {current.label.lower()} thread cannot be withdrawn."}
                )
        elif status not in FEEDBACK_TRANSITIONS[current]:
            raise ValidationError(
                {
                    "status": f"A {current.label.lower()} thread cannot become "
                    f"{FeedbackStatus(status).label.lower()}."
                }
            )
        if status in FEEDBACK_NOTE_REQUIRED and not note:
            word = "resolved" if status == FeedbackStatus.RESOLVED else "declined"
            raise ValidationError({"note": f"Say why the thread is {word}: the author reads it."})
        was_overdue = _was_overdue(thread, now)
        fields = ["status", "closed_at", "resolution_note", "last_activity_at"]
        thread.status = status
        thread.closed_at = now if status in CLOSED_FEEDBACK_STATUSES else None
        thread.resolution_note = note if status in CLOSED_FEEDBACK_STATUSES else ""
        thread.last_activity_at = now
        if note and _record_first_response(thread, by=by, at=now):
            fields += ["first_response_at", "first_response_by"]
        thread.save(update_fields=fields)
        change = FeedbackStatusChange.objects.create(
            thread=thread, by=by, from_status=current, to_status=status, note=note, created_at=now
        )
        _notify_after_commit("status", change.pk)
    if was_overdue and not _was_overdue(thread, now):
        _recompute_trust(product)
    return thread


def feedback_thread_link_incident(
    *, thread: FeedbackThread, by, incident: Incident | None
) -> FeedbackThread:
    """Link an issue thread to one of the product's incidents (None: unlink). Editors."""
    product = thread.product
    _require_visible(user=by, product=product)
    if incident is None:
        if not can_edit_product(user=by, product=product):
            raise PermissionDenied(
                "Only the product's owners and stewards, and admins, link threads to incidents."
            )
    else:
        _check_incident(product=product, by=by, kind=thread.kind, incident=incident)
    FeedbackThread.objects.filter(pk=thread.pk).update(incident=incident)
    thread.incident = incident
    return thread
