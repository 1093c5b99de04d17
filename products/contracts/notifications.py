"""Telling a product's current grantees that a published contract version breaks what they
rely on: one plain email each (grantees do not see each other's addresses), sent after
the publication commits. A delivery failure is logged, never raised: a broken SMTP server
must not undo a publication."""

from __future__ import annotations

import logging

from django.core.mail import EmailMessage, get_connection
from django.urls import reverse

from portal.core.links import absolute_url
from products.models import Contract, DataProduct
from sharing.access.notifications import grantee_recipients
from sharing.access.selectors import grants_of_product

logger = logging.getLogger(__name__)


def contract_grantee_recipients(*, product: DataProduct) -> list[str]:
    """Email addresses of the people an active grant on the product reaches (a team grant
    reaches its members)."""

    emails: set[str] = set()
    for grant in grants_of_product(product=product).prefetch_related("group__user_set"):
        emails.update(grantee_recipients(grant=grant))
    return sorted(emails)


def contract_breaking_notify(*, contract_id: int) -> int:
    """Email the breaking changes of a published version to the product's grantees.
    Returns how many emails were sent."""
    contract = Contract.objects.select_related("product__domain").filter(pk=contract_id).first()
    if contract is None or not contract.breaking_changes:
        return 0
    product = contract.product
    recipients = contract_grantee_recipients(product=product)
    if not recipients:
        return 0
    page = absolute_url(
        reverse(
            "products:product-contract",
            kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
        )
    )
    changes = contract.breaking_changes
    lines = [
        f"Version {contract.version} of the contract of {product.name} ({product.key}) is "
        f"published with {len(changes)} breaking change{'s' if len(changes) != 1 else ''}:",
        "",
        *[f"- {change['label']}: {change['subject']}. {change['message']}" for change in changes],
        "",
        "Queries, reports and notebooks that rely on these may fail or see different data.",
        f"The contract and its versions: {page}",
        "",
        "You get this because you have read access to this product.",
    ]
    subject = f"[{product.key}] Breaking contract change: version {contract.version}"[:250]
    messages = [
        EmailMessage(subject=subject, body="\n".join(lines), to=[email]) for email in recipients
    ]
    try:
        return get_connection().send_messages(messages) or 0
    except Exception:  # an SMTP failure must not undo the publication
        logger.exception("contract %s: breaking-change emails failed", contract_id)
        return 0
