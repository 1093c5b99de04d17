"""A product descriptor in the Open Data Product Standard (ODPS) v1.0.0: who owns the
product, what it is for, its output ports (each pointing at the product's contract), its
support channels. Validated against the ODPS JSON schema before it leaves the portal."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from portal.core.links import absolute_url
from products.contracts.services.contracts import (
    contract_id_for,
    product_description,
    product_uuid,
)
from products.contracts.services.documents import odps_validate
from products.contracts.services.mapping import LIFECYCLE_TO_ODCS
from products.feedback.services.support import support_channels_of
from products.models import DataProduct, OutputPort

ODPS_API_VERSION = "v1.0.0"
PORT_TYPES = {"table": "tables", "file": "files"}


def product_odps(*, product: DataProduct) -> dict[str, Any]:
    """The product's ODPS v1.0.0 descriptor (valid against the schema)."""
    contract_id = contract_id_for(product=product)
    document: dict[str, Any] = {
        "apiVersion": ODPS_API_VERSION,
        "kind": "DataProduct",
        "id": product_uuid(product),
        "name": product.name,
        "version": product.version,
        "status": LIFECYCLE_TO_ODCS.get(product.status, str(product.status)),
        "domain": product.domain.name,
    }
    description = product_description(product=product)
    if description:
        document["description"] = description
    document["authoritativeDefinitions"] = [
        {
            "type": "catalog",
            "url": absolute_url(product.get_absolute_url()),
            "description": "The product's page in the data product portal.",
        }
    ]
    document["customProperties"] = [
        {"property": "portalKey", "value": product.key},
        {"property": "audience", "value": str(product.audience)},
    ]
    tags = [tag.name for tag in product.tags.all()]
    if tags:
        document["tags"] = tags
    ports = OutputPort.objects.filter(product=product).order_by("name")
    document["outputPorts"] = [
        {
            "name": port.name,
            **({"description": port.description} if port.description else {}),
            "type": PORT_TYPES.get(port.kind, port.kind),
            "version": product.version,
            "contractId": contract_id,
        }
        for port in ports
    ]
    support = [
        {"channel": channel.channel, "url": channel.url}
        | {
            key: getattr(channel, key)
            for key in ("description", "tool", "scope")
            if getattr(channel, key)
        }
        for channel in support_channels_of(product=product)
        if channel.url  # ODPS requires a URL for each channel
    ]
    if support:
        document["support"] = support
    owners = list(product.owners.order_by("username"))
    document["team"] = {
        "name": product.domain.name,
        "members": [
            {"username": user.username, "role": "owner"}
            | ({"name": user.get_full_name()} if user.get_full_name() else {})
            for user in owners
        ],
    }
    document["productCreatedTs"] = product.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    problems = odps_validate(document)
    if problems:  # a bug, not bad input: the export must always be valid
        raise RuntimeError(f"The ODPS export of {product.key} is invalid: {problems[:5]}")
    return document
