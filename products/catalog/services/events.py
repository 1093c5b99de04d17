"""The events of a product, written one way: every event about a product carries the
product's key, name, status, version and link (docs/event-types.md), and is written by
portal.core.events.event_emit in the transaction of the change it records.

Features above the catalog (trust, access, exports, share links, feedback, contracts) call
`product_event_emit` from their services, inside the transaction of their change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from portal.core.events import event_emit
from portal.core.links import absolute_url
from portal.models import Event
from products.models import DataProduct


def product_event_data(product: DataProduct) -> dict[str, Any]:
    """What every product event's `data` starts with."""
    return {
        "product": product.key,
        "name": product.name,
        "status": product.status,
        "version": product.version,
        "url": absolute_url(product.get_absolute_url()),
    }


def product_event_emit(
    type: str,  # noqa: A002 - CloudEvents' own name
    *,
    product: DataProduct,
    data: dict[str, Any] | None = None,
    people: Iterable = (),
) -> Event:
    """Record that `type` happened to `product`, in the current transaction: `data` adds
    its keys to the product's own."""
    return event_emit(
        type,
        product=product,
        data={**product_event_data(product), **(data or {})},
        people=people,
    )
