"""Reads of webhooks: whose subscriptions a person sees (their own; admins all), a
subscription's deliveries, log and dead letters, and its health for the page."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from portal.core.events import EVENT_TYPES
from sharing.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from sharing.models.webhooks import DeliveryStatus


def webhook_subscriptions_for(*, user) -> QuerySet[WebhookSubscription]:
    subscriptions = WebhookSubscription.objects.select_related("owner", "product__domain", "domain")
    if user.is_staff:
        return subscriptions.order_by("-created_at", "-id")
    return subscriptions.filter(owner_id=user.pk).order_by("-created_at", "-id")


def webhook_subscription_get(*, user, subscription_id: int) -> WebhookSubscription:
    """The subscription, or DoesNotExist when it is missing or someone else's (one answer)."""
    return webhook_subscriptions_for(user=user).get(pk=subscription_id)


def webhook_deliveries_of(
    *, subscription: WebhookSubscription, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    """Newest first."""
    deliveries = WebhookDelivery.objects.filter(subscription=subscription).select_related("event")
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries.order_by("-id")


def webhook_dead_letters_of(*, subscription: WebhookSubscription) -> QuerySet[WebhookDelivery]:
    return webhook_deliveries_of(subscription=subscription, status=DeliveryStatus.DEAD)


def webhook_attempts_of(*, subscription: WebhookSubscription) -> QuerySet[WebhookAttempt]:
    """The delivery log, newest first."""
    return (
        WebhookAttempt.objects.filter(delivery__subscription=subscription)
        .select_related("delivery__event")
        .order_by("-id")
    )


def webhook_health(*, subscriptions) -> dict[int, dict]:
    """Per subscription id: pending and dead-lettered counts (one query for the list)."""
    ids = [subscription.pk for subscription in subscriptions]
    health = {pk: {"pending": 0, "dead": 0} for pk in ids}
    rows = (
        WebhookDelivery.objects.filter(
            subscription_id__in=ids, status__in=[DeliveryStatus.PENDING, DeliveryStatus.DEAD]
        )
        .values_list("subscription_id", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    for pk, status, count in rows:
        health[pk][status] = count
    return health


def event_type_groups() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """The event types grouped by what they are about (product, access, export run...),
    for the form's checkboxes: [(group, its name in words, [(type, description), ...])]."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for event_type, description in EVENT_TYPES.items():
        group = event_type.split(".")[1]
        groups.setdefault(group, []).append((event_type, description))
    return [(group, group.replace("_", " "), types) for group, types in groups.items()]
