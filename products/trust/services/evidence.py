"""What happens after new evidence arrives (a check run, a monitor observation):
incidents open or resolve, SLOs are re-evaluated, the trust score is recomputed, in that
order. Both hooks are safe to call twice: incidents open once per cause and resolve once,
and a second snapshot of the same evidence holds the same numbers."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from portal.core.task_queue import enqueue_on_commit
from products.choices import CheckOutcome, CheckRunStatus, Severity
from products.models import CheckRun, PortObservation, TrustScore
from products.trust.services.incidents import (
    incidents_reconcile_availability,
    incidents_reconcile_check_run,
)
from products.trust.services.slos import slos_evaluate_for_product
from products.trust.services.trust_score import trust_score_compute
from sharing.models import Sync
from sharing.models.syncs import SyncStatus, SyncTrigger


def trust_after_check_run(*, run: CheckRun) -> None:
    """Reconcile incidents with a finished run, re-evaluate SLOs, record a trust score."""
    if not run.is_finished:
        return
    product = run.port.product
    incidents_reconcile_check_run(run=run)
    slos_evaluate_for_product(product=product)
    trust_score_compute(product=product)
    if (
        check_run_passed(run)
        and Sync.objects.filter(
            product=product, trigger=SyncTrigger.AFTER_CHECKS, status=SyncStatus.ACTIVE
        ).exists()
    ):
        # Syncs sit above trust in the import order: they are told by task name.
        enqueue_on_commit("sharing.syncs.tasks.syncs_after_check_run", run.pk)


def check_run_passed(run: CheckRun) -> bool:
    """The run finished and every error-severity check of it passed."""
    if run.status != CheckRunStatus.DONE:
        return False
    return not run.results.filter(
        severity=Severity.ERROR, outcome__in=(CheckOutcome.FAIL, CheckOutcome.ERROR)
    ).exists()


def trust_after_observation(*, observation: PortObservation) -> None:
    """Reconcile the port's availability incident with a monitor observation, re-evaluate
    SLOs, and record a trust score.

    Monitors observe every port every few minutes; a snapshot per observation would
    bury the history. So the score is recorded when an incident changed state, or when the
    product's latest snapshot is older than settings.TRUST_SCORE_OBSERVATION_INTERVAL."""
    port = observation.port
    product = port.product
    changed = incidents_reconcile_availability(
        port=port,
        available=observation.available,
        at=observation.observed_at,
        detail=observation.error,
    )
    changed |= slos_evaluate_for_product(product=product)
    interval: timedelta = settings.TRUST_SCORE_OBSERVATION_INTERVAL
    recent = TrustScore.objects.filter(
        product=product, computed_at__gt=timezone.now() - interval
    ).exists()
    if changed or not recent:
        trust_score_compute(product=product)
