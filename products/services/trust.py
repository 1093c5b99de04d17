"""What happens after new evidence arrives (a check run, a monitor observation):
incidents open or resolve, SLOs are re-evaluated, the trust score is recomputed."""

from __future__ import annotations

from products.models import CheckRun, PortObservation


def trust_after_check_run(*, run: CheckRun) -> None:
    """Reconcile incidents with a finished run, re-evaluate SLOs, record a trust score."""
    # Implemented with incidents, SLOs and trust scores (issue 3).


def trust_after_observation(*, observation: PortObservation) -> None:
    """Reconcile availability incidents with a monitor observation, re-evaluate SLOs,
    record a trust score."""
