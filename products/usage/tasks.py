"""Background work of usage: summaries."""

from __future__ import annotations

from celery import shared_task

from products.usage.services import usage_summaries_refresh


@shared_task(name="products.tasks.usage_summaries_refresh_hourly")
def usage_summaries_refresh_hourly() -> int:
    """Beat (hourly): recompute the usage dashboard's per-product summaries."""

    return usage_summaries_refresh().products
