"""Background work of contracts: notices of breaking changes."""

from __future__ import annotations

from celery import shared_task

from portal.core.task_queue import queued_task_claim
from products.contracts.notifications import contract_breaking_notify as breaking_notify


@shared_task(name="products.tasks.contract_breaking_notify", acks_late=True)
def contract_breaking_notify(contract_id: int, outbox_id: int | None = None) -> int:
    # Safe to deliver twice: the outbox row is claimed once, then the emails are sent.
    if not queued_task_claim(outbox_id):
        return 0
    return breaking_notify(contract_id=contract_id)
