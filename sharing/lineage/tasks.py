"""Celery entry point of the OpenLineage sender (sharing.lineage.services)."""

from celery import shared_task

from portal.core.events import event_consumer_started
from sharing.lineage.services import lineage_events_send


@shared_task(name="sharing.lineage.tasks.openlineage_send")
def openlineage_send() -> dict:
    """Woken after each commit that wrote events, and on beat every few seconds to catch
    up on lost wake-ups and on an endpoint that was down."""
    event_consumer_started("sharing.lineage.tasks.openlineage_send")
    report = lineage_events_send()
    return {
        "sent": report.sent,
        "passed_over": report.passed_over,
        "refused": report.refused,
        "stopped": report.stopped,
    }
