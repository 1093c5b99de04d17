"""Telling people an incident opened or resolved: one email to the domain's owners and
stewards and, when the domain has a webhook URL, one JSON POST (Slack-compatible `text`
plus structured fields). Exactly one message per state change: the event is claimed
(`notified_at` set by a conditional UPDATE) before anything is sent, so a task delivered
twice sends once. Delivery failures are logged, never raised: a broken webhook must not
stop the run that opened the incident."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.core.mail import EmailMessage
from django.utils import timezone

from portal.core.links import absolute_url
from products.catalog.selectors import domain_managers
from products.choices import IncidentEventKind
from products.models import IncidentEvent
from products.trust.services.incidents import NOTIFIED_EVENT_KINDS

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 5


def incident_recipients(*, event: IncidentEvent) -> list[str]:
    """Email addresses of the owning domain's owners and stewards (active users)."""
    managers = domain_managers(domain_id=event.incident.product.domain_id)
    return sorted(set(managers.exclude(email="").values_list("email", flat=True)))


def incident_message(*, event: IncidentEvent) -> dict[str, Any]:
    """The structured message of an opened/resolved event (the webhook's JSON)."""
    incident = event.incident
    product = incident.product
    product_url = absolute_url(product.get_absolute_url())
    incident_url = f"{product_url}#incident-{incident.pk}"
    verb = "opened" if event.kind == IncidentEventKind.OPENED else "resolved"
    emoji = ":rotating_light:" if verb == "opened" else ":white_check_mark:"
    text = f"{emoji} Incident {verb} on <{product_url}|{product.name}>: {incident.title}"
    if verb == "resolved" and incident.resolution_note:
        text += f"\n{incident.resolution_note}"
    return {
        "text": text,
        "event": f"incident.{verb}",
        "event_id": event.pk,
        "incident": {
            "id": incident.pk,
            "title": incident.title,
            "status": incident.status,
            "severity": incident.severity,
            "cause": incident.cause,
            "cause_key": incident.cause_key,
            "opened_at": incident.opened_at.isoformat(),
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
            "resolution_note": incident.resolution_note,
            "url": incident_url,
        },
        "product": {"key": product.key, "name": product.name, "url": product_url},
        "domain": {"slug": product.domain.slug, "name": product.domain.name},
        "port": (
            {"id": incident.port_id, "name": incident.port.name} if incident.port_id else None
        ),
    }


def _email(event: IncidentEvent, message: dict[str, Any], recipients: list[str]) -> bool:
    incident = event.incident
    verb = message["event"].split(".", 1)[1]
    subject = f"[{incident.product.key}] Incident {verb}: {incident.title}"[:250]
    lines = [
        f"Incident {verb} on {incident.product.name} ({incident.product.key}).",
        "",
        f"Title: {incident.title}",
        f"Severity: {incident.severity}",
        f"Opened: {incident.opened_at:%Y-%m-%d %H:%M} UTC",
    ]
    if incident.resolved_at:
        lines.append(f"Resolved: {incident.resolved_at:%Y-%m-%d %H:%M} UTC")
    if event.body:
        lines += ["", event.body]
    lines += ["", message["incident"]["url"], ""]
    lines.append("You get this because you own or steward this domain in the portal.")
    try:
        EmailMessage(subject=subject, body="\n".join(lines), to=recipients).send()
    except Exception:  # an SMTP failure must not stop the webhook or the caller
        logger.exception("incident %s: email for event %s failed", incident.pk, event.pk)
        return False
    return True


def webhook_post(*, url: str, payload: dict[str, Any]) -> bool:
    """POST JSON to an http(s) URL; True on a 2xx answer. Failures are logged."""
    if urlsplit(url).scheme not in ("http", "https"):
        logger.warning("webhook refused: %r is not an http(s) URL", url)
        return False
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "data-product-portal"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            ok = 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.warning("webhook POST to %s failed: %s", urlsplit(url).netloc, exc)
        return False
    if not ok:
        logger.warning("webhook POST to %s answered %s", urlsplit(url).netloc, response.status)
    return ok


def incident_event_notify(*, event_id: int) -> bool:
    """Send the event's email and webhook, once. Returns whether this call sent them
    (False: gone, not a notified kind, or already claimed by an earlier delivery)."""
    claimed = IncidentEvent.objects.filter(
        pk=event_id, kind__in=NOTIFIED_EVENT_KINDS, notified_at__isnull=True
    ).update(notified_at=timezone.now())
    if not claimed:
        return False
    event = IncidentEvent.objects.select_related("incident__product__domain", "incident__port").get(
        pk=event_id
    )
    message = incident_message(event=event)
    recipients = incident_recipients(event=event)
    if recipients:
        _email(event, message, recipients)
    url = event.incident.product.domain.incident_webhook_url
    if url:
        webhook_post(url=url, payload=message)
    # People following the product: an in-portal notification and an email each.
    from products.feedback.services.follows import incident_notify_followers

    incident_notify_followers(event=event, message=message, already_emailed=recipients)
    return True
