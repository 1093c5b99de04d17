"""Celery entry points of access: thin wrappers around services."""

from celery import shared_task

from sharing.services import access_review


@shared_task
def access_review_daily() -> int:
    """Expiry notices due today (each sent once, however often this runs)."""
    return access_review()


from sharing.export_tasks import (  # noqa: E402, F401 - scheduled exports' tasks, discovered here
    export_run,
    export_runs_pruner,
    export_runs_reaper,
    export_schedule_fire,
)
