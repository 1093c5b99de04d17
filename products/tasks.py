"""Celery entry points: receive ids, call a service."""

from celery import shared_task

from products.services import schema_refresh_execute, schema_refresh_reap


@shared_task(acks_late=True)
def schema_refresh_run(run_id: int) -> None:
    # Safe to deliver twice: the service claims the run once.
    schema_refresh_execute(run_id=run_id)


@shared_task
def schema_refresh_reaper() -> int:
    return schema_refresh_reap()
