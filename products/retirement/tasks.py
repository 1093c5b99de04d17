"""Background work of retirement: notices, flagging unused products, advancing proposals."""

from __future__ import annotations

from celery import shared_task

from products.retirement.services import retirement_advance, retirement_flag_unused


@shared_task(name="products.tasks.retirement_notify", acks_late=True)
def retirement_notify(event_id: int) -> int:
    # Safe to deliver twice: the event is claimed once (notified_at), then sent.
    from products.retirement.notifications import retirement_event_notify

    return retirement_event_notify(event_id=event_id)


@shared_task(name="products.tasks.retirement_flag_unused_daily")
def retirement_flag_unused_daily() -> int:
    """Beat (daily): email the owners of products unread for 90 days, once per period."""

    return retirement_flag_unused()


@shared_task(name="products.tasks.retirement_advance_due")
def retirement_advance_due() -> dict:
    """Beat: deprecate at the end of a notice period, retire at the end of the grace
    period (each step once however often this runs)."""

    return retirement_advance()
