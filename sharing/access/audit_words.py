"""An audit event told in words, for the audit page: "Read 1,000 rows of columns a, b
where country is BE · all rows asked · as CSV" rather than its stored key-values."""

from __future__ import annotations

from typing import Any

from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.timezone import localtime

from sharing.access.filters import filter_in_words
from sharing.choices import AuditAction, Channel, DataFormat
from sharing.models import AccessEvent

# A read's limit from which it means "every row": sharing.serving.reads.MAX_ROWS, the
# limit of a read that names none (scheduled exports pass a larger one still). A test
# holds the two equal; the access room may not import the serving one.
EVERY_ROW_LIMIT = 10_000_000

BASIS_WORDS = {
    "admin": "as an admin",
    "domain_member": "as a member of the product's domain",
    "grant": "through a grant",
}

# Detail keys said in words below; any other key is still shown, as "key: value".
_TOLD = {
    "format",
    "port",
    "basis",
    "limit",
    "masked",
    "error",
    "share_link",
    "export_run",
    "export_schedule",
    "file",
    "sha256",
    "metric",
    "dimensions",
    "grain",
    "delta_sharing",
    "grantee",
    "requester",
    "reason",
    "expires_at",
    "purpose",
    "duration_days",
}


def _value_words(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:,}"
    return str(value)


def _rows_words(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"


def _columns_words(columns: list[str]) -> str:
    if not columns:
        return ""
    return f"column {columns[0]}" if len(columns) == 1 else f"columns {', '.join(columns)}"


def _when(value: Any) -> str:
    moment = parse_datetime(value) if isinstance(value, str) else None
    return date_format(localtime(moment), "Y-m-d H:i") if moment else str(value)


def _read_words(event: AccessEvent, detail: dict) -> list[str]:
    head = "Read" if event.rows is None else f"Read {_rows_words(event.rows)}"
    columns = _columns_words(event.columns)
    if columns:
        head += f" of {columns}"
    if event.row_filter:
        head += f" where {filter_in_words(event.row_filter)}"
    parts = [head]
    limit = detail.get("limit")
    if isinstance(limit, int) and not isinstance(limit, bool):
        parts.append(
            "all rows asked" if limit >= EVERY_ROW_LIMIT else f"at most {_rows_words(limit)} asked"
        )
    fmt = detail.get("format")
    if fmt:
        label = dict(DataFormat.choices).get(fmt, "a metric" if fmt == "metric" else fmt)
        parts.append(f"as {label}")
    if detail.get("port"):
        parts.append(f"from port {detail['port']}")
    if detail.get("basis") in BASIS_WORDS:
        parts.append(BASIS_WORDS[detail["basis"]])
    if detail.get("masked"):
        parts.append(f"masked: {', '.join(map(str, detail['masked']))}")
    if detail.get("metric"):
        metric = f"metric {detail['metric']}"
        if detail.get("dimensions"):
            metric += f" by {', '.join(map(str, detail['dimensions']))}"
        if detail.get("grain"):
            metric += f" per {detail['grain']}"
        parts.append(metric)
    if detail.get("share_link"):
        parts.append(f"through share link #{detail['share_link']}")
    if detail.get("export_run"):
        run = f"scheduled export run #{detail['export_run']}"
        if detail.get("file"):
            run += f" (file {detail['file']})"
        parts.append(run)
    sharing = detail.get("delta_sharing")
    if isinstance(sharing, dict):
        words = f"Delta Sharing to {sharing.get('recipient_name') or 'a recipient'}"
        if sharing.get("table"):
            words += f", table {sharing['table']}"
        if sharing.get("version") is not None:
            words += f", version {sharing['version']}"
        parts.append(words)
    if detail.get("error"):
        parts.append(f"failed: {detail['error']}")
    return parts


def _decision_words(event: AccessEvent, detail: dict) -> list[str]:
    action = event.action
    who = detail.get("grantee") or detail.get("requester") or ""
    scope = _columns_words(event.columns) or "every column"
    if event.row_filter:
        scope += f", rows where {filter_in_words(event.row_filter)}"
    if action == AuditAction.GRANT:
        head = f"Granted {who} {scope}" if who else f"Granted {scope}"
        if detail.get("expires_at"):
            head += f" until {_when(detail['expires_at'])}"
        parts = [head]
    elif action == AuditAction.REVOKE:
        parts = [f"Revoked the access of {who}" if who else "Revoked a grant"]
    elif action == AuditAction.APPROVE:
        parts = [f"Approved the request of {who}: {scope}" if who else f"Approved: {scope}"]
    elif action == AuditAction.DENY:
        parts = [f"Denied the request of {who}" if who else "Denied a request"]
    elif action == AuditAction.REQUEST:
        head = f"Asked for {scope}"
        if detail.get("duration_days"):
            head += f" for {detail['duration_days']} days"
        parts = [head]
        if detail.get("purpose"):
            parts.append(f"purpose: {detail['purpose']}")
    elif action == AuditAction.CANCEL:
        parts = ["Withdrew the request"]
    elif action == AuditAction.EXPIRY_NOTICE:
        head = f"Told {who} their access ends" if who else "Told the grantee their access ends"
        if detail.get("expires_at"):
            head += f" on {_when(detail['expires_at'])}"
        parts = [head]
    else:
        parts = []
    if detail.get("reason") and action != AuditAction.READ_DENIED:
        parts.append(f"reason: {detail['reason']}")
    return parts


def event_in_words(event: AccessEvent) -> str:
    """What happened, in words, parts joined by " · "."""
    detail = event.detail if isinstance(event.detail, dict) else {}
    if event.action == AuditAction.READ:
        parts = _read_words(event, detail)
    elif event.action == AuditAction.READ_DENIED:
        parts = [f"Refused: {detail['reason']}" if detail.get("reason") else "Refused"]
        if event.columns:
            parts.append(f"asked {_columns_words(event.columns)}")
        sharing = detail.get("delta_sharing")
        if isinstance(sharing, dict) and sharing.get("recipient_name"):
            parts.append(f"Delta Sharing to {sharing['recipient_name']}")
    else:
        parts = _decision_words(event, detail)
        if detail.get("share_link"):
            parts.append(f"share link #{detail['share_link']}")
    for key, value in detail.items():
        if key not in _TOLD:
            parts.append(f"{key.replace('_', ' ')}: {_value_words(value)}")
    if event.channel and event.action != AuditAction.READ:
        parts.append(f"via {dict(Channel.choices).get(event.channel, event.channel)}")
    return " · ".join(part for part in parts if part)
