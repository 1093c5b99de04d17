"""Following a product: its announcements and incidents reach the follower (in-portal
notification and email). Anyone who can see a product may follow it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.urls import reverse

from portal.core.links import absolute_url
from portal.core.notifications import emails_send, notifications_create
from products.choices import PUBLIC_STATUSES
from products.feedback.services.feedback import can_see_product
from products.models import DataProduct, IncidentEvent, ProductFollow


def product_follow(*, product: DataProduct, by) -> ProductFollow:
    """Follow the product (following twice changes nothing)."""
    if not can_see_product(user=by, product=product):
        raise PermissionDenied("You cannot see this product.")
    existing = ProductFollow.objects.filter(user_id=by.pk, product=product).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return ProductFollow.objects.create(user=by, product=product)
    except IntegrityError:  # a double click raced us
        return ProductFollow.objects.get(user_id=by.pk, product=product)


def product_unfollow(*, product: DataProduct, by) -> bool:
    """Stop following. Returns whether the user was following."""
    deleted, _ = ProductFollow.objects.filter(user_id=by.pk, product=product).delete()
    return bool(deleted)


def product_follow_state(*, product: DataProduct, user) -> dict:
    """{"following": bool, "followers": int} in one query."""
    counts = ProductFollow.objects.filter(product=product).aggregate(
        followers=Count("pk"), mine=Count("pk", filter=Q(user_id=user.pk))
    )
    return {"following": bool(counts["mine"]), "followers": counts["followers"]}


def products_followed_by(*, user) -> QuerySet[DataProduct]:
    """Products the user follows and can still see."""
    return (
        DataProduct.objects.visible_to(user)
        .filter(follows__user_id=user.pk)
        .select_related("domain")
        .order_by("domain__name", "name")
    )


def product_followers(*, product: DataProduct) -> list:
    """Active users following the product who can still see it. In SQL, the rule of
    `DataProduct.objects.visible_to` read the other way round: everyone sees published
    and deprecated products; drafts and retired ones only admins and the domain's
    members."""

    users = get_user_model().objects.filter(product_follows__product=product, is_active=True)
    if product.status not in PUBLIC_STATUSES:
        users = users.filter(
            Q(is_staff=True) | Q(domain_memberships__domain_id=product.domain_id)
        ).distinct()
    return list(users.order_by("pk"))


def incident_notify_followers(
    *, event: IncidentEvent, message: dict, already_emailed: list[str]
) -> int:
    """An incident opened or resolved: followers of its product get an in-portal
    notification and an email (unless the incident email reached them already as the
    domain's owners or stewards). Once per event and person. Returns how many were
    newly notified."""

    incident = event.incident
    product = incident.product
    followers = product_followers(product=product)
    if not followers:
        return 0
    verb = message["event"].split(".", 1)[1]
    title = f"Incident {verb} on {product.name}: {incident.title}"
    path = reverse(
        "products:incident-detail",
        kwargs={
            "domain_slug": product.domain.slug,
            "product_slug": product.slug,
            "incident_id": incident.pk,
        },
    )
    notified = notifications_create(
        users=followers,
        title=title,
        body=incident.resolution_note if verb == "resolved" else "",
        url=path,
        product=product,
        key=f"incident-event:{event.pk}",
    )
    lines = [
        f"Incident {verb} on {product.name} ({product.key}): {incident.title}",
        "",
    ]
    if verb == "resolved" and incident.resolution_note:
        lines += [incident.resolution_note, ""]
    lines += [
        absolute_url(path),
        "",
        "You get this because you follow this product in the portal. Unfollow it on its page.",
    ]
    skip = set(already_emailed)
    emails_send(
        to=[user.email for user in notified if user.email not in skip],
        subject=f"[{product.key}] {title}",
        body="\n".join(lines),
        what=f"incident event {event.pk} (followers)",
    )
    return len(notified)
