"""Support channels of a product: where consumers get help (ODCS and ODPS `support`)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet

from products.catalog.permissions import can_edit_product
from products.models import DataProduct, SupportChannel

URL_SCHEMES = ("https://", "http://", "mailto:")
LIMITS = {"channel": 200, "url": 500, "tool": 40, "scope": 40, "description": 500}
MAX_CHANNELS = 50


def support_channels_of(*, product: DataProduct) -> QuerySet[SupportChannel]:
    return SupportChannel.objects.filter(product=product).order_by("position", "pk")


@transaction.atomic
def support_channels_set(*, product: DataProduct, by, channels: list[dict]) -> list[SupportChannel]:
    """Replace the product's support channels with `channels`, each {"channel", "url",
    "tool", "scope", "description"}. Errors are keyed `channels[<i>].<field>`."""
    if not can_edit_product(user=by, product=product):
        raise PermissionDenied("Only the domain's owners and stewards change support channels.")
    errors: dict[str, str] = {}
    if len(channels) > MAX_CHANNELS:
        raise ValidationError({"channels": f"At most {MAX_CHANNELS} support channels."})
    rows = []
    for i, spec in enumerate(channels):
        values = {key: str(spec.get(key) or "").strip() for key in LIMITS}
        if not values["channel"]:
            errors[f"channels[{i}].channel"] = "Name the channel."
        for key, limit in LIMITS.items():
            if len(values[key]) > limit:
                errors[f"channels[{i}].{key}"] = f"At most {limit} characters."
        if values["url"] and not values["url"].lower().startswith(URL_SCHEMES):
            errors[f"channels[{i}].url"] = "Give an https:, http: or mailto: address."
        rows.append(SupportChannel(product=product, position=i, **values))
    if errors:
        raise ValidationError(errors)
    SupportChannel.objects.filter(product=product).delete()
    return SupportChannel.objects.bulk_create(rows)
