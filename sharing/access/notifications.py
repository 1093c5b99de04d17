"""Telling people about access: a request to the domain's owners and stewards, a decision
to the requester, a revocation to the grantee, an approaching expiry to the grantee and
the domain's owners.

Two channels: an in-portal notification (the bell), written by the service in the same
transaction as the change, once per person and event (`key`), so it shows at once and
never for a change that was rolled back; and a plain email in the style of incident
notifications, sent from a worker after the commit, whose failure is logged, never
raised (a broken SMTP server must not undo an approval)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.mail import EmailMessage
from django.urls import reverse

from portal.core.links import absolute_url
from portal.core.notifications import notifications_create
from portal.core.people import display_name
from products.catalog.selectors import domain_managers
from products.choices import MANAGING_ROLES, MembershipRole
from products.models import DataProduct
from sharing.models import AccessGrant, AccessRequest

logger = logging.getLogger(__name__)

FOOTER_MANAGER = "You get this because you own or steward this domain in the portal."
FOOTER_OWNER = "You get this because you own this domain in the portal."


def access_tab_url(product: DataProduct) -> str:
    return absolute_url(
        reverse(
            "sharing:product-access",
            kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
        )
    )


def my_access_url() -> str:
    return absolute_url(reverse("sharing:my-access"))


def _product_path(product: DataProduct, name: str, anchor: str = "") -> str:
    path = reverse(name, kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug})
    return path + anchor


def _person(user) -> str:
    return display_name(user)


def _grantees(grant: AccessGrant) -> list:
    """The people a grant lets read: its user, or the active members of its group."""
    if grant.user_id:
        return [grant.user]
    return list(grant.group.user_set.filter(is_active=True).order_by("pk"))


def domain_recipients(*, product: DataProduct, roles: Iterable[str]) -> list[str]:
    managers = domain_managers(domain_id=product.domain_id, roles=roles)
    return sorted(set(managers.exclude(email="").values_list("email", flat=True)))


def grantee_recipients(*, grant: AccessGrant) -> list[str]:
    if grant.user_id:
        users = [grant.user]
    else:
        users = list(grant.group.user_set.all())
    return sorted({u.email for u in users if u.email and u.is_active})


def _send(subject: str, lines: list[str], to: list[str], what: str) -> bool:
    if not to:
        return False
    try:
        EmailMessage(subject=subject[:250], body="\n".join(lines), to=to).send()
    except Exception:  # an SMTP failure must not undo the decision
        logger.exception("access email (%s) failed", what)
        return False
    return True


def _scope_lines(columns: list[str], row_filter: list[dict]) -> list[str]:
    lines = [f"Columns: {', '.join(columns) if columns else 'all'}"]
    if row_filter:
        clauses = "; ".join(
            f"{c['column']} {c['op']}" + (f" {c['value']!r}" if "value" in c else "")
            for c in row_filter
        )
        lines.append(f"Rows: only where {clauses}")
    return lines


def access_request_notify_managers(*, request: AccessRequest) -> bool:
    product = request.product
    to = domain_recipients(product=product, roles=MANAGING_ROLES)
    lines = [
        f"{request.requester.username} asks to read {product.name} ({product.key}).",
        "",
        f"Purpose: {request.purpose}",
        *_scope_lines(request.columns, []),
        f"Duration: {request.duration_days} days",
        "",
        f"Approve or deny it on the product's Access tab: {access_tab_url(product)}",
        "",
        FOOTER_MANAGER,
    ]
    return _send(
        f"[{product.key}] Access requested by {request.requester.username}",
        lines,
        to,
        f"request {request.pk}",
    )


def access_request_notify_requester(*, request: AccessRequest) -> bool:
    """The decision on a request (approved or denied) to the person who asked."""
    product = request.product
    to = [request.requester.email] if request.requester.email else []
    grant = getattr(request, "grant", None)
    if grant is not None:
        lines = [
            f"Your request to read {product.name} ({product.key}) was approved.",
            "",
            *_scope_lines(grant.columns, grant.row_filter),
            f"Until: {grant.expires_at:%Y-%m-%d %H:%M} UTC",
        ]
        subject = f"[{product.key}] Access approved"
    else:
        lines = [
            f"Your request to read {product.name} ({product.key}) was denied.",
            "",
            f"Reason: {request.decision_reason}",
        ]
        subject = f"[{product.key}] Access denied"
    if request.decision_reason and grant is not None:
        lines.append(f"Note: {request.decision_reason}")
    lines += ["", f"Your access: {my_access_url()}"]
    return _send(subject, lines, to, f"decision on request {request.pk}")


def grant_expiry_notify(*, grant: AccessGrant) -> bool:
    """Tell the grantee and the domain's owners that a grant ends soon."""
    product = grant.product
    when = f"{grant.expires_at:%Y-%m-%d %H:%M} UTC"
    sent = _send(
        f"[{product.key}] Your access ends on {grant.expires_at:%Y-%m-%d}",
        [
            f"Your read access to {product.name} ({product.key}) ends on {when}.",
            "",
            f"Still need it? Request access again: {absolute_url(product.get_absolute_url())}",
            f"Your access: {my_access_url()}",
        ],
        grantee_recipients(grant=grant),
        f"expiry of grant {grant.pk} (grantee)",
    )
    owners_sent = _send(
        f"[{product.key}] Access of {grant.principal_label} ends on {grant.expires_at:%Y-%m-%d}",
        [
            f"The read access of {grant.principal_label} to {product.name} ends on {when}.",
            "",
            f"Review who has access: {access_tab_url(product)}",
            "",
            FOOTER_OWNER,
        ],
        domain_recipients(product=product, roles=[MembershipRole.OWNER]),
        f"expiry of grant {grant.pk} (owners)",
    )
    return sent or owners_sent


# --- in-portal notifications (the bell), written by the services ---------------------------


def access_request_notice_managers(*, request: AccessRequest) -> list:
    """A new request, to the domain's owners and stewards: where to decide it."""
    product = request.product
    columns = ", ".join(request.columns) if request.columns else "all columns"
    return notifications_create(
        users=domain_managers(domain_id=product.domain_id),
        title=f"{_person(request.requester)} asks to read {product.name}",
        body=f"{request.purpose} ({columns}, {request.duration_days} days)",
        url=_product_path(product, "sharing:product-access", "#pending"),
        product=product,
        key=f"access-request:{request.pk}",
    )


def access_request_notice_requester(*, request: AccessRequest, grant: AccessGrant | None) -> list:
    """The decision, to the person who asked: approved (with until when) or denied (why)."""
    product = request.product
    if grant is not None:
        title = f"Your access to {product.name} is approved"
        body = f"You may read it until {grant.expires_at:%Y-%m-%d}."
        if request.decision_reason:
            body += f" Note: {request.decision_reason}"
        url = _product_path(product, "sharing:product-data")
    else:
        title = f"Your request to read {product.name} was denied"
        body = f"Reason: {request.decision_reason}"
        url = _product_path(product, "sharing:product-access", "#your-access")
    return notifications_create(
        users=[request.requester],
        title=title,
        body=body,
        url=url,
        product=product,
        key=f"access-decision:{request.pk}",
    )


def grant_revoke_notice(*, grant: AccessGrant) -> list:
    """A revocation, to the people the grant let read."""
    product = grant.product
    return notifications_create(
        users=_grantees(grant),
        title=f"Your access to {product.name} was revoked",
        body=f"Reason: {grant.revoke_reason}" if grant.revoke_reason else "",
        url=_product_path(product, "sharing:product-access", "#your-access"),
        product=product,
        key=f"grant-revoked:{grant.pk}",
    )


def grant_expiry_notice_in_app(*, grant: AccessGrant) -> list:
    """An approaching expiry, to the grantees (request again) and the domain's owners
    (review who has access), like the emails."""
    product = grant.product
    when = f"{grant.expires_at:%Y-%m-%d}"
    key = f"grant-expiry:{grant.pk}"
    grantees = notifications_create(
        users=_grantees(grant),
        title=f"Your access to {product.name} ends on {when}",
        body="Still need it? Request access again from the product's Access tab.",
        url=_product_path(product, "sharing:product-access", "#your-access"),
        product=product,
        key=key,
    )
    owners = notifications_create(
        users=domain_managers(domain_id=product.domain_id, roles=[MembershipRole.OWNER]),
        title=f"Access of {grant.principal_label} to {product.name} ends on {when}",
        body="Review who has access on the product's Access tab.",
        url=_product_path(product, "sharing:product-access", "#grants"),
        product=product,
        key=key,
    )
    return grantees + owners
