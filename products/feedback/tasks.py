"""Background work of feedback: notifications and announcements."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="products.tasks.feedback_notify", acks_late=True)
def feedback_notify(what: str, object_id: int) -> None:
    # Safe to deliver twice: the thread, reply or status change is claimed once.
    from products.feedback.notifications import feedback_notify as notify

    notify(what=what, object_id=object_id)


@shared_task(name="products.tasks.announcement_deliver", acks_late=True)
def announcement_deliver(announcement_id: int) -> None:
    # Safe to deliver twice: the announcement is claimed once (delivered_at).
    from products.feedback.services.announcements import announcement_deliver as deliver

    deliver(announcement_id=announcement_id)
