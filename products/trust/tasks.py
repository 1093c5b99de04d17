"""Background work of trust: check runs, monitors, SLOs, incidents, trust scores."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from portal.core.task_queue import enqueue
from products.models import DataProduct, OutputPort
from products.trust.notifications import incident_event_notify
from products.trust.services.checks import (
    check_run_execute,
    check_run_for_slot,
    check_run_reap,
    check_schedules_sync,
)
from products.trust.services.evidence import trust_after_check_run, trust_after_observation
from products.trust.services.monitors import port_observe, ports_to_observe
from products.trust.services.slos import products_with_slos, slos_evaluate_for_product
from products.trust.services.trust_score import products_for_trust_scores, trust_score_compute


@shared_task(name="products.tasks.check_run", acks_late=True)
def check_run(run_id: int) -> None:
    # Safe to deliver twice: the run is claimed once; a second delivery does nothing.
    run = check_run_execute(run_id=run_id)
    if run is not None:
        trust_after_check_run(run=run)


@shared_task(name="products.tasks.checks_run_scheduled")
def checks_run_scheduled(port_id: int, cron: str) -> None:
    """Beat fires this per (port, cron) (see check_schedules_sync)."""
    port = OutputPort.objects.filter(pk=port_id).select_related("product").first()
    if port is None:
        return
    run = check_run_for_slot(port=port, cron=cron, at=timezone.now())
    if run is not None:
        # A lost message leaves the run queued: the check-run reaper sends it again.
        enqueue("products.tasks.check_run", run.pk)


@shared_task(name="products.tasks.check_schedules_sync")
def check_schedules_sync_for_product(product_id: int) -> None:
    """The beat schedules of a product's checks follow its check schedule (asked for by the
    catalog when the product's schedule changes). Safe twice: it writes what should be."""
    for port in OutputPort.objects.filter(product_id=product_id):
        check_schedules_sync(port=port)


@shared_task(name="products.tasks.check_run_reaper")
def check_run_reaper() -> int:
    return check_run_reap()


@shared_task(name="products.tasks.monitors_observe_all")
def monitors_observe_all() -> int:
    """Fan out one observation task per port."""
    port_ids = list(ports_to_observe())
    for port_id in port_ids:
        enqueue("products.tasks.monitor_observe", port_id)  # the next round covers a lost one
    return len(port_ids)


@shared_task(name="products.tasks.monitor_observe")
def monitor_observe(port_id: int) -> None:
    port = OutputPort.objects.filter(pk=port_id).select_related("source", "product").first()
    if port is None:
        return
    trust_after_observation(observation=port_observe(port=port))


@shared_task(name="products.tasks.incident_notify", acks_late=True)
def incident_notify(event_id: int) -> None:
    # Safe to deliver twice: the event is claimed once (notified_at), then sent.
    incident_event_notify(event_id=event_id)


@shared_task(name="products.tasks.slos_evaluate_all")
def slos_evaluate_all() -> int:
    """Beat: re-evaluate every product's SLOs (their windows roll on even without new
    evidence); a product whose incidents changed gets a new trust score."""
    count = 0
    for product in DataProduct.objects.filter(pk__in=list(products_with_slos())):
        if slos_evaluate_for_product(product=product):
            trust_score_compute(product=product)
        count += 1
    return count


@shared_task(name="products.tasks.trust_score_recompute")
def trust_score_recompute(product_id: int) -> None:
    """A new snapshot of one product's trust score, asked for by a feature below trust
    (feedback answered an overdue thread). Safe twice: the same evidence, the same numbers."""
    product = DataProduct.objects.filter(pk=product_id).first()
    if product is not None:
        trust_score_compute(product=product)


@shared_task(name="products.tasks.trust_scores_recompute_all")
def trust_scores_recompute_all() -> int:
    """Beat (daily): a snapshot for every product not retired, so incident ages and SLO
    windows show in the history even on days without runs."""
    count = 0
    for product in products_for_trust_scores().iterator(chunk_size=500):
        trust_score_compute(product=product)
        count += 1
    return count
