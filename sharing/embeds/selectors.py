"""Reads of the embeds pages, with their rules: which embeds a person sees on a product's
Embeds page, which embed they may open (a missing one and one they may not manage look
the same), the applications that may sign its tokens, and its views per tenant."""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from products.catalog.permissions import can_edit_product
from products.catalog.selectors import products_visible
from products.models import DataProduct
from sharing.embeds.services.embeds import can_manage_embed
from sharing.models import Embed, EmbedApp, EmbedDeniedToken, EmbedViewDay

RECENT_DAYS = 30


def recent_since(*, days: int = RECENT_DAYS) -> date:
    """The first day (UTC) of the last `days` days, today included."""
    return timezone.now().date() - timedelta(days=days - 1)


def embeds_for_product(*, user, product: DataProduct, days: int = RECENT_DAYS) -> QuerySet[Embed]:
    """The product's embeds on its Embeds page: every one for its owners, stewards and
    admins, the ones they created for anyone else; each with `views_recent` and
    `downloads_recent` over the last `days` days."""
    embeds = Embed.objects.filter(product=product)
    if not can_edit_product(user=user, product=product):
        embeds = embeds.filter(created_by_id=user.pk)
    since = Q(view_days__day__gte=recent_since(days=days))
    return (
        embeds.select_related("port", "metric", "created_by")
        .annotate(
            views_recent=Coalesce(Sum("view_days__views", filter=since), 0),
            downloads_recent=Coalesce(Sum("view_days__downloads", filter=since), 0),
        )
        .order_by("title", "created_at")
    )


def embed_get_manageable(*, user, embed_id) -> Embed:
    """The embed, when `user` sees its product and may manage it (its creator, the
    product's managers); Embed.DoesNotExist otherwise, so that a page answers 404 alike
    for a missing embed and for one the user may not know of."""
    embed = (
        Embed.objects.select_related(
            "product__domain", "port", "metric", "created_by", "disabled_by"
        )
        .filter(pk=embed_id)
        .first()
    )
    if (
        embed is None
        or not products_visible(user=user).filter(pk=embed.product_id).exists()
        or not can_manage_embed(user=user, embed=embed)
    ):
        raise Embed.DoesNotExist
    return embed


def embed_apps(*, embed: Embed) -> list[EmbedApp]:
    """The applications that may sign tokens for the embed: its own, then those of its
    product's domain, each with its keys (oldest first)."""
    apps = (
        EmbedApp.objects.filter(Q(embed=embed) | Q(domain_id=embed.product.domain_id))
        .select_related("domain", "created_by")
        .prefetch_related("keys")
        .order_by(F("domain_id").asc(nulls_first=True), "name", "pk")  # its own first
    )
    return list(apps)


def embed_app_of(*, embed: Embed, app_id) -> EmbedApp | None:
    """One of embed_apps(embed) by id, or None."""
    try:
        app_id = int(app_id)
    except (TypeError, ValueError):
        return None
    return (
        EmbedApp.objects.filter(Q(embed=embed) | Q(domain_id=embed.product.domain_id))
        .select_related("embed__product__domain", "domain")
        .filter(pk=app_id)
        .first()
    )


def embed_denied_tokens(*, embed: Embed, limit: int = 20) -> list[EmbedDeniedToken]:
    return list(embed.denied_tokens.select_related("denied_by").order_by("-denied_at")[:limit])


def embed_views_by_tenant(*, embed: Embed, days: int = RECENT_DAYS) -> list[dict]:
    """Views and CSV downloads of the last `days` days per tenant (the values of the
    locked parameters), most viewed first."""
    return list(
        EmbedViewDay.objects.filter(embed=embed, day__gte=recent_since(days=days))
        .values("tenant")
        .annotate(views=Sum("views"), downloads=Sum("downloads"))
        .order_by("-views", "tenant")
    )


def embed_views_by_day(*, embed: Embed, days: int = RECENT_DAYS) -> list[dict]:
    """(day, tenant, views) of the last `days` days, oldest first: the chart's rows."""
    return list(
        EmbedViewDay.objects.filter(embed=embed, day__gte=recent_since(days=days))
        .values("day", "tenant", "views")
        .order_by("day", "tenant")
    )
