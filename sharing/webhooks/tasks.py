"""Celery entry points of webhooks: the outbox fan-out and a subscription's sender.
They call sharing.webhooks.services and schedule the next round."""

from celery import shared_task

from portal.core.events import event_consumer_started
from sharing.webhooks.services import webhook_deliveries_send, webhooks_due_wake, webhooks_fan_out


@shared_task(name="sharing.webhooks.tasks.webhooks_fan_out", ignore_result=True)
def webhooks_fan_out_task() -> int:
    """Woken after each commit that wrote events, and every few seconds (beat)."""
    event_consumer_started("sharing.webhooks.tasks.webhooks_fan_out")
    return webhooks_fan_out()


@shared_task(name="sharing.webhooks.tasks.webhook_deliver", ignore_result=True, acks_late=True)
def webhook_deliver(subscription_id: int) -> int:
    outcome = webhook_deliveries_send(subscription_id=subscription_id)
    if outcome.more:
        webhook_deliver.delay(subscription_id)  # the next batch, behind other work
    elif outcome.retry_in is not None:
        webhook_deliver.apply_async(args=[subscription_id], countdown=outcome.retry_in)
    return outcome.sent


@shared_task(name="sharing.webhooks.tasks.webhooks_due_wake", ignore_result=True)
def webhooks_due_wake_task() -> int:
    """Every few seconds (beat): retries whose time came, wake-ups that were lost."""
    return webhooks_due_wake()
