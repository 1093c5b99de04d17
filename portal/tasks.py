"""Celery entry points of the portal itself: the reaper of the task outbox."""

from celery import shared_task

from portal.core.task_queue import queued_tasks_redispatch


@shared_task(name="portal.tasks.queued_tasks_reaper")
def queued_tasks_reaper() -> int:
    """Beat: send again the background work requested while the broker was down."""
    return queued_tasks_redispatch()
