"""Celery entry points of events: the NATS publisher (sharing.events.nats)."""

from celery import shared_task

from portal.core.events import event_consumer_started
from sharing.events.nats import events_publish_to_nats


@shared_task(name="sharing.events.tasks.events_publish_nats", ignore_result=True)
def events_publish_nats() -> int:
    """Woken after each commit that wrote events, and every few seconds by beat."""
    event_consumer_started("sharing.events.tasks.events_publish_nats")
    return events_publish_to_nats().published
