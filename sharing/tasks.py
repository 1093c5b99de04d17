"""Celery entry points of access: thin wrappers around services."""

from celery import shared_task

from sharing.services import access_review


@shared_task
def access_review_daily() -> int:
    """Expiry notices due today (each sent once, however often this runs)."""
    return access_review()
