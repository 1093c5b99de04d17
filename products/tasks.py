"""Celery entry points: receive ids, call services, return quietly when a row is gone."""

from celery import shared_task
from django.utils import timezone

from portal.core.task_queue import enqueue, queued_task_claim
from products.catalog.services.schema_refresh import schema_refresh_execute, schema_refresh_reap
from products.contracts.notifications import contract_breaking_notify as breaking_notify
from products.models import DataProduct, OutputPort
from products.trust.notifications import incident_event_notify
from products.trust.services.checks import check_run_execute, check_run_for_slot, check_run_reap
from products.trust.services.evidence import trust_after_check_run, trust_after_observation
from products.trust.services.monitors import port_observe, ports_to_observe
from products.trust.services.slos import products_with_slos, slos_evaluate_for_product
from products.trust.services.trust_score import products_for_trust_scores, trust_score_compute


@shared_task(name="products.tasks.schema_refresh_run", acks_late=True)
def schema_refresh_run(run_id: int) -> None:
    # Safe to deliver twice: the service claims the run once.
    schema_refresh_execute(run_id=run_id)


@shared_task(name="products.tasks.schema_refresh_reaper")
def schema_refresh_reaper() -> int:
    return schema_refresh_reap()


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


@shared_task(name="products.tasks.trust_scores_recompute_all")
def trust_scores_recompute_all() -> int:
    """Beat (daily): a snapshot for every product not retired, so incident ages and SLO
    windows show in the history even on days without runs."""
    count = 0
    for product in products_for_trust_scores().iterator(chunk_size=500):
        trust_score_compute(product=product)
        count += 1
    return count


@shared_task(name="products.tasks.feedback_notify", acks_late=True)
def feedback_notify(what: str, object_id: int) -> None:
    # Safe to deliver twice: the thread, reply or status change is claimed once.
    from products.feedback.notifications import feedback_notify as notify

    notify(what=what, object_id=object_id)


@shared_task(name="products.tasks.announcement_deliver", acks_late=True)
def announcement_deliver(announcement_id: int) -> None:
    # Safe to deliver twice: the announcement is claimed once (delivered_at).
    from products.feedback.services.announcements import announcement_deliver as deliver

    deliver(announcement_id=announcement_id)


@shared_task(name="products.tasks.contract_breaking_notify", acks_late=True)
def contract_breaking_notify(contract_id: int, outbox_id: int | None = None) -> int:
    # Safe to deliver twice: the outbox row is claimed once, then the emails are sent.
    if not queued_task_claim(outbox_id):
        return 0
    return breaking_notify(contract_id=contract_id)


# --- usage and retirement ---------------------------------------------------------------


@shared_task(name="products.tasks.retirement_notify", acks_late=True)
def retirement_notify(event_id: int) -> int:
    # Safe to deliver twice: the event is claimed once (notified_at), then sent.
    from products.retirement.notifications import retirement_event_notify

    return retirement_event_notify(event_id=event_id)


@shared_task(name="products.tasks.retirement_flag_unused_daily")
def retirement_flag_unused_daily() -> int:
    """Beat (daily): email the owners of products unread for 90 days, once per period."""
    from products.retirement.services import retirement_flag_unused

    return retirement_flag_unused()


@shared_task(name="products.tasks.retirement_advance_due")
def retirement_advance_due() -> dict:
    """Beat: deprecate at the end of a notice period, retire at the end of the grace
    period (each step once however often this runs)."""
    from products.retirement.services import retirement_advance

    return retirement_advance()


@shared_task(name="products.tasks.usage_summaries_refresh_hourly")
def usage_summaries_refresh_hourly() -> int:
    """Beat (hourly): recompute the usage dashboard's per-product summaries."""
    from products.usage.services import usage_summaries_refresh

    return usage_summaries_refresh().products
