"""Celery entry points: receive ids, call services, return quietly when a row is gone."""

from celery import shared_task
from django.utils import timezone

from products.models import OutputPort
from products.services import schema_refresh_execute, schema_refresh_reap
from products.services.checks import check_run_execute, check_run_for_slot, check_run_reap
from products.services.monitors import port_observe, ports_to_observe
from products.services.trust import trust_after_check_run, trust_after_observation


@shared_task(acks_late=True)
def schema_refresh_run(run_id: int) -> None:
    # Safe to deliver twice: the service claims the run once.
    schema_refresh_execute(run_id=run_id)


@shared_task
def schema_refresh_reaper() -> int:
    return schema_refresh_reap()


@shared_task(acks_late=True)
def check_run(run_id: int) -> None:
    # Safe to deliver twice: the run is claimed once; a second delivery does nothing.
    run = check_run_execute(run_id=run_id)
    if run is not None:
        trust_after_check_run(run=run)


@shared_task
def checks_run_scheduled(port_id: int, cron: str) -> None:
    """Beat fires this per (port, cron) (see check_schedules_sync)."""
    port = OutputPort.objects.filter(pk=port_id).select_related("product").first()
    if port is None:
        return
    run = check_run_for_slot(port=port, cron=cron, at=timezone.now())
    if run is not None:
        check_run.delay(run.pk)


@shared_task
def check_run_reaper() -> int:
    return check_run_reap()


@shared_task
def monitors_observe_all() -> int:
    """Fan out one observation task per port."""
    port_ids = list(ports_to_observe())
    for port_id in port_ids:
        monitor_observe.delay(port_id)
    return len(port_ids)


@shared_task
def monitor_observe(port_id: int) -> None:
    port = OutputPort.objects.filter(pk=port_id).select_related("source", "product").first()
    if port is None:
        return
    trust_after_observation(observation=port_observe(port=port))
