"""Background work of the catalog: schema refreshes."""

from __future__ import annotations

from celery import shared_task

from products.catalog.services.schema_refresh import schema_refresh_execute, schema_refresh_reap


@shared_task(name="products.tasks.schema_refresh_run", acks_late=True)
def schema_refresh_run(run_id: int) -> None:
    # Safe to deliver twice: the service claims the run once.
    schema_refresh_execute(run_id=run_id)


@shared_task(name="products.tasks.schema_refresh_reaper")
def schema_refresh_reaper() -> int:
    return schema_refresh_reap()
