"""Serving an embed's data to a host application's viewers.

Every data call: the token verified (sharing.embeds.tokens), the embed active, the
caller's origin on the embed's allow-list (sharing.embeds.public_views), then the
creator's access decided again (within what they may share). The answer comes from the
cache when one was computed for the same embed, locked parameter values, access decision
and product data version (the id of the product's latest event: a check run, an incident,
a new version, a revoked grant... each starts a new one), else it is read through the
same serving path as every channel (`read_plan` + `read_rows`, or `metric_evaluate`),
audited with channel `embed`, and kept for the embed's cache time.

The answer carries what a viewer needs to judge the number: how fresh the data is, and a
notice while the product has an open incident or the port's latest check run has a
failing error check (in words for outsiders: no incident title, no check name). With
`show_last_good`, the rows of the last answer served without a notice are shown then,
with their date.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import cache
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from portal.core.json_values import json_value
from portal.models import Event
from products.choices import UNRESOLVED_INCIDENT_STATUSES, CheckOutcome, IncidentCause, Severity
from products.connectors import ConnectorError
from products.definitions.services.metrics import MetricRefused, metric_evaluate
from products.models import CheckResult, CheckRun, Incident, PortObservation
from sharing.access.decision import AccessDecision, share_decision
from sharing.choices import Channel, EmbedChart
from sharing.embeds.refusals import EmbedRefused
from sharing.embeds.tokens import EmbedToken
from sharing.models import Embed, EmbedViewDay
from sharing.serving.reads import ReadRefused, read_plan, read_rows

CACHE_PREFIX = "embed:v1:"
LAST_GOOD_PREFIX = "embed-good:v1:"
LAST_GOOD_SECONDS = 30 * 24 * 3600
NO_ACCESS = (
    "This embed can no longer show its data: the person who created it no longer may. "
    "Ask the data product's team."
)
UNREADABLE = "The data could not be read just now: try again in a moment."


def embed_active(embed_id) -> Embed:
    """The embed to serve, or EmbedRefused(404), the same for unknown and disabled.

    With what every call needs (its product and domain, for the creator's access, and its
    creator) and no more: a cached answer reads neither the port nor the metric, which a
    miss then loads. No ordering (the model's orders by the product's domain and name,
    a sort over four joined tables for one row)."""
    embed = (
        Embed.objects.select_related("product__domain", "created_by")
        .filter(pk=embed_id, disabled_at__isnull=True)
        .order_by()
        .first()
    )
    if embed is None:
        raise EmbedRefused(404, "There is no such embed, or it was disabled.")
    return embed


def locked_filter(embed: Embed, token: EmbedToken) -> list[dict]:
    """The locked parameters as row filter clauses: `column = value` each."""
    return [
        {"column": column, "op": "=", "value": token.params[name]}
        for name, column in sorted(embed.locked_params.items())
    ]


def _decision(embed: Embed) -> AccessDecision:
    creator = embed.created_by
    decision = share_decision(user=creator, product=embed.product) if creator else None
    if decision is None or not decision.allowed:
        raise EmbedRefused(403, NO_ACCESS)
    return decision


def _decision_key(decision: AccessDecision) -> list:
    return [
        decision.basis,
        None if decision.columns is None else sorted(decision.columns),
        sorted(decision.masked),
        [clause.as_dict() for clause in decision.row_filter],
    ]


def data_version(embed: Embed) -> int:
    """The product's data version: its latest event's id (0 before any)."""
    return Event.objects.filter(product_id=embed.product_id).aggregate(last=Max("id"))["last"] or 0


def _digest(*parts) -> str:
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _refused(exc: ReadRefused | MetricRefused) -> EmbedRefused:
    if exc.status == 403:
        return EmbedRefused(403, NO_ACCESS)
    if exc.status == 400:
        return EmbedRefused(400, f"A locked parameter's value does not fit: {exc.message}")
    return EmbedRefused(502, UNREADABLE)


def _port_rows(embed: Embed, token: EmbedToken, client_address) -> tuple[list, list, bool]:
    try:
        plan = read_plan(
            user=embed.created_by,
            product=embed.product,
            channel=Channel.EMBED,
            port_slug=embed.port.slug,
            columns=list(embed.columns),
            filter=locked_filter(embed, token),
            limit=embed.row_cap + 1,
            shareable_only=True,
        )
    except ReadRefused as exc:
        raise _refused(exc) from exc
    plan.detail = {"embed": str(embed.pk), "tenant": token.tenant}
    try:
        columns, rows = read_rows(plan, client_address=client_address)
    except ConnectorError as exc:
        raise EmbedRefused(502, UNREADABLE) from exc
    truncated = len(rows) > embed.row_cap
    return columns, [[json_value(v) for v in row] for row in rows[: embed.row_cap]], truncated


def _metric_rows(embed: Embed, token: EmbedToken, client_address) -> tuple[list, list, bool]:
    try:
        result = metric_evaluate(
            metric=embed.metric,
            user=embed.created_by,
            channel=Channel.EMBED,
            dimensions=[embed.dimension] if embed.dimension else None,
            grain=embed.grain or None,
            filters=locked_filter(embed, token),
            client_address=client_address,
            detail={"embed": str(embed.pk), "tenant": token.tenant},
            shareable_only=True,
        )
    except MetricRefused as exc:
        raise _refused(exc) from exc
    rows = [[json_value(row[name]) for name in result.columns] for row in result.rows]
    truncated = result.truncated or len(rows) > embed.row_cap
    return result.columns, rows[: embed.row_cap], truncated


def _moment(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def embed_trust(embed: Embed) -> dict:
    """How fresh the port's data is, and the notices a viewer should see."""
    notices = []
    incident = (
        Incident.objects.filter(
            product_id=embed.product_id, status__in=UNRESOLVED_INCIDENT_STATUSES
        )
        .exclude(cause=IncidentCause.SYNC)
        .order_by("opened_at")
        .values_list("opened_at", flat=True)
        .first()
    )
    if incident is not None:
        notices.append(
            {
                "kind": "incident",
                "since": _moment(incident),
                "message": "The data team is working on a problem with this data: the "
                "numbers may be wrong or late.",
            }
        )
    latest_run = (
        CheckRun.objects.filter(port_id=embed.port_id, finished_at__isnull=False)
        .order_by("-finished_at", "-pk")
        .values_list("pk", "finished_at")
        .first()
    )
    if latest_run is not None and (
        CheckResult.objects.filter(
            run_id=latest_run[0],
            severity=Severity.ERROR,
            outcome__in=(CheckOutcome.FAIL, CheckOutcome.ERROR),
        ).exists()
    ):
        notices.append(
            {
                "kind": "check",
                "since": _moment(latest_run[1]),
                "message": "A quality check of this data is failing: the numbers may be wrong.",
            }
        )
    observed = (
        PortObservation.objects.filter(port_id=embed.port_id, newest_at__isnull=False)
        .order_by("-observed_at")
        .values_list("newest_at", "observed_at")
        .first()
    )
    freshness = (
        {"newest_at": _moment(observed[0]), "observed_at": _moment(observed[1])}
        if observed
        else None
    )
    return {"freshness": freshness, "notices": notices}


def _describe(embed: Embed) -> dict:
    metric = embed.metric
    if metric is not None:
        x = "period" if embed.grain else (embed.dimension or None)
        y = ["value"]
        label = metric.name
    else:
        x = embed.columns[0] if embed.chart != EmbedChart.TABLE else None
        y = list(embed.columns[1:]) if embed.chart != EmbedChart.TABLE else []
        label = embed.title
    return {
        "id": str(embed.pk),
        "title": embed.title,
        "chart": embed.chart,
        "over": "metric" if metric is not None else "port",
        "x": x,
        "y": y,
        "label": label,
        "csv": embed.allow_csv,
    }


@dataclass
class EmbedAnswer:
    payload: dict
    cached: bool


def embed_answer(
    embed: Embed, token: EmbedToken, *, client_address: str | None = None
) -> EmbedAnswer:
    """The embed's data for the token's locked parameter values (see the module)."""
    decision = _decision(embed)
    decision_key = _decision_key(decision)
    params = sorted(token.params.items())
    key = CACHE_PREFIX + _digest(
        str(embed.pk), embed.updated_at, decision_key, params, data_version(embed)
    )
    if embed.cache_seconds:
        payload = cache.get(key)
        if payload is not None:
            return EmbedAnswer(payload=payload, cached=True)
    if embed.metric_id is not None:
        columns, rows, truncated = _metric_rows(embed, token, client_address)
    else:
        columns, rows, truncated = _port_rows(embed, token, client_address)
    payload = {
        "embed": _describe(embed),
        "columns": columns,
        "rows": rows,
        "truncated": truncated,
        "as_of": timezone.now().astimezone(UTC).isoformat(),
        "last_good": None,
        **embed_trust(embed),
    }
    good_key = LAST_GOOD_PREFIX + _digest(str(embed.pk), embed.updated_at, decision_key, params)
    if not payload["notices"]:
        cache.set(
            good_key,
            {"rows": rows, "columns": columns, "as_of": payload["as_of"]},
            LAST_GOOD_SECONDS,
        )
    elif embed.show_last_good:
        good = cache.get(good_key)
        if good is not None and good["columns"] == columns:
            payload.update(rows=good["rows"], last_good=good["as_of"])
    if embed.cache_seconds:
        cache.set(key, payload, embed.cache_seconds)
    return EmbedAnswer(payload=payload, cached=False)


def embed_view_count(embed: Embed, token: EmbedToken, *, download: bool = False) -> None:
    """One more view (or CSV download) of the embed today, for the token's tenant."""
    table = EmbedViewDay._meta.db_table
    column = "downloads" if download else "views"
    other = "views" if download else "downloads"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (embed_id, day, tenant, {column}, {other}) "  # noqa: S608 - our names
            "VALUES (%s, %s, %s, 1, 0) ON CONFLICT (embed_id, day, tenant) "
            f"DO UPDATE SET {column} = {table}.{column} + 1",
            [
                # The id as the database stores it (a uuid on PostgreSQL, hex text on SQLite).
                Embed._meta.pk.get_db_prep_value(embed.pk, connection),
                timezone.now().astimezone(UTC).date(),
                token.tenant[:300],
            ],
        )
