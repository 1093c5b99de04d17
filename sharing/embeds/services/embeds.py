"""Creating, disabling and denying tokens of embeds.

Who embeds: the product's managers, and holders of a grant marked shareable (an embed
shows data to people without a portal account, as a share link does), within their own
access: its columns and locked-parameter columns must be ones they read, and the embed
reads as its creator at every request afterwards (sharing.embeds.serving).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from products.catalog.permissions import can_edit_product
from products.catalog.selectors import port_for
from products.definitions.services.metrics import is_numeric
from products.models import DataProduct, Metric
from sharing.access.decision import share_decision
from sharing.choices import Channel, EmbedChart
from sharing.models import Embed, EmbedDeniedToken
from sharing.serving.reads import ReadRefused, read_plan

PARAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# A host name as origins carry it (IDNs in their xn-- form); it goes into the embed page's
# Content-Security-Policy, so nothing else may pass.
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
IPV6 = re.compile(r"[0-9a-f:.]+")
MAX_PARAMS = 5
MAX_ORIGINS = 20
MAX_TABLE_COLUMNS = 20
MAX_CACHE_SECONDS = 3600
MAX_ROW_CAP = 5000
GRAINS = ("day", "week", "month")


def can_manage_embed(*, user, embed: Embed) -> bool:
    """The embed's creator and the product's managers: disable it, deny a token, register
    its applications."""
    if not getattr(user, "is_authenticated", False):
        return False
    return embed.created_by_id == user.pk or can_edit_product(user=user, product=embed.product)


def origin_normalise(text: str) -> str:
    """`https://shop.example.com` as browsers send it in `Origin`: scheme, host and a
    port other than the scheme's own, lower case. ValueError for anything else."""
    raw = (text or "").strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{raw[:80]!r} is not an origin: write https://host or https://host:port.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{raw[:80]!r} has more than an origin: leave out the path.")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{raw[:80]!r} has an invalid port.") from None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host and IPV6.fullmatch(host):
        host = f"[{host}]"
    elif not HOST_NAME.fullmatch(host):
        raise ValueError(f"{raw[:80]!r} does not name a valid host.")
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _clean_origins(origins) -> list[str]:
    if isinstance(origins, str):
        origins = origins.split()
    if not isinstance(origins, list | tuple) or not origins:
        raise ValidationError(
            {
                "allowed_origins": "Name at least one origin that may show the embed "
                "(https://app.example.com)."
            }
        )
    if len(origins) > MAX_ORIGINS:
        raise ValidationError({"allowed_origins": f"At most {MAX_ORIGINS} origins."})
    cleaned = []
    for origin in origins:
        try:
            cleaned.append(origin_normalise(str(origin)))
        except ValueError as exc:
            raise ValidationError({"allowed_origins": str(exc)}) from None
    return list(dict.fromkeys(cleaned))


def _clean_whole(value, name: str, low: int, high: int, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError({name: "Give a whole number."}) from None
    if isinstance(value, bool) or not low <= number <= high:
        raise ValidationError({name: f"Give a number from {low} to {high:,}."})
    return number


def _clean_params(params, *, allowed: set[str], what: str) -> dict[str, str]:
    if params in (None, "", {}):
        return {}
    if not isinstance(params, dict):
        raise ValidationError(
            {"locked_params": 'Give parameters as {"tenant": "customer_id"}: a name, the column.'}
        )
    if len(params) > MAX_PARAMS:
        raise ValidationError({"locked_params": f"At most {MAX_PARAMS} locked parameters."})
    cleaned = {}
    for name, column in params.items():
        if not isinstance(name, str) or not PARAM_NAME.fullmatch(name):
            raise ValidationError(
                {
                    "locked_params": f"{str(name)[:40]!r}: a parameter's name is lower-case "
                    "letters, digits and _ (tenant, customer_id)."
                }
            )
        if not isinstance(column, str) or column not in allowed:
            raise ValidationError(
                {
                    "locked_params": f"Parameter {name!r} filters on {str(column)[:80]!r}, which "
                    f"is not {what}."
                }
            )
        cleaned[name] = column
    return cleaned


def _check_readable(*, by, product, port, columns: list[str]) -> None:
    """PermissionDenied (403) unless `by` reads each of `columns` unmasked (within what they
    may share); ValidationError for columns the port does not have."""
    try:
        plan = read_plan(
            user=by,
            product=product,
            channel=Channel.EMBED,
            port_slug=port.slug,
            columns=columns or None,
            limit=0,
            shareable_only=True,
        )
    except ReadRefused as exc:
        if exc.status == 403:
            raise PermissionDenied(exc.message) from exc
        raise ValidationError({"columns": exc.message}) from exc
    masked = sorted(set(columns) & plan.masked)
    if masked:
        raise PermissionDenied(
            f"Your access masks {', '.join(masked)}: an embed cannot show or filter on it."
        )


def _clean_metric_view(metric: Metric, chart: str, grain: str, dimension: str) -> tuple[str, str]:
    grain = (grain or "").strip().lower()
    dimension = (dimension or "").strip()
    if grain and grain not in GRAINS:
        raise ValidationError({"grain": f"Choose a grain: {', '.join(GRAINS)}."})
    if grain and not metric.time_column:
        raise ValidationError({"grain": f"{metric.key} has no time column: choose no grain."})
    if dimension and dimension not in metric.dimensions:
        raise ValidationError(
            {
                "dimension": f"{metric.key} has no dimension {dimension!r}: its dimensions are "
                f"{', '.join(metric.dimensions) or 'none'}."
            }
        )
    if chart == EmbedChart.KPI and dimension:
        raise ValidationError({"dimension": "A KPI tile shows one value: choose no dimension."})
    if chart in (EmbedChart.LINE, EmbedChart.AREA) and not grain:
        raise ValidationError(
            {"grain": "A line or area chart draws values over time: choose a grain."}
        )
    if chart == EmbedChart.BAR and not (grain or dimension):
        raise ValidationError({"dimension": "A bar chart needs a dimension or a grain."})
    if grain and dimension:
        raise ValidationError({"dimension": "Choose a grain or a dimension, not both."})
    return grain, dimension


def _clean_port_columns(chart: str, columns, types: dict[str, str]) -> list[str]:
    if isinstance(columns, str):
        columns = [part.strip() for part in columns.split(",") if part.strip()]
    if not isinstance(columns, list | tuple) or not all(isinstance(c, str) for c in columns):
        raise ValidationError({"columns": "Give the columns as a list of names."})
    columns = list(dict.fromkeys(columns))
    unknown = [name for name in columns if name not in types]
    if unknown:
        raise ValidationError({"columns": f"Unknown column(s): {', '.join(unknown)}."})
    if chart == EmbedChart.KPI:
        raise ValidationError({"metric": "A KPI tile shows a metric's value: choose a metric."})
    if chart == EmbedChart.TABLE:
        if not 1 <= len(columns) <= MAX_TABLE_COLUMNS:
            raise ValidationError({"columns": f"Choose 1 to {MAX_TABLE_COLUMNS} columns."})
        return columns
    if len(columns) < 2:
        raise ValidationError(
            {"columns": "A chart needs its x column, then one or more numeric y columns."}
        )
    not_numbers = [name for name in columns[1:] if not is_numeric(types[name])]
    if not_numbers:
        raise ValidationError(
            {"columns": f"The y column(s) must be numbers: {', '.join(not_numbers)} are not."}
        )
    return columns


@transaction.atomic
def embed_create(
    *,
    by,
    product: DataProduct,
    title: str,
    chart: str,
    port_slug: str | None = None,
    metric: Metric | None = None,
    columns=(),
    grain: str = "",
    dimension: str = "",
    locked_params=None,
    allowed_origins=(),
    cache_seconds=None,
    row_cap=None,
    allow_csv: bool = False,
    show_last_good: bool = False,
) -> Embed:
    """A new embed of `product`, over `metric` (one of the product's) or a port's
    `columns`. Raises PermissionDenied when `by` may not share the product or read what
    the embed shows, ValidationError naming the field at fault."""
    decision = share_decision(user=by, product=product)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise ValidationError({"title": "Give the embed a title of 1 to 200 characters."})
    if chart not in EmbedChart.values:
        raise ValidationError({"chart": f"Choose a chart: {', '.join(EmbedChart.values)}."})
    if metric is not None:
        if metric.port.product_id != product.pk:
            raise ValidationError({"metric": f"{metric.key} is not a metric of {product.key}."})
        port = metric.port
        grain, dimension = _clean_metric_view(metric, chart, grain, dimension)
        read = [c for c in (metric.column, metric.denominator_column, metric.time_column) if c]
        _check_readable(by=by, product=product, port=port, columns=[*read, *metric.dimensions])
        filterable = {*metric.dimensions, *([metric.time_column] if metric.time_column else [])}
        params = _clean_params(
            locked_params, allowed=filterable, what=f"a dimension of {metric.key}"
        )
        columns = []
    else:
        port = port_for(product=product, slug=port_slug or None)
        if port is None:
            raise ValidationError({"port": f"{product.key} has no output port {port_slug!r}."})
        types = dict(port.columns.values_list("name", "data_type"))
        if not types:
            raise ValidationError({"port": "This port's schema is not known yet: refresh it."})
        columns = _clean_port_columns(chart, columns, types)
        params = _clean_params(locked_params, allowed=set(types), what="a column of the port")
        _check_readable(by=by, product=product, port=port, columns=[*columns, *params.values()])
        grain = dimension = ""
    return Embed.objects.create(
        product=product,
        port=port,
        metric=metric,
        title=title,
        chart=chart,
        columns=columns,
        grain=grain,
        dimension=dimension,
        locked_params=params,
        allowed_origins=_clean_origins(list(allowed_origins or ())),
        cache_seconds=_clean_whole(cache_seconds, "cache_seconds", 0, MAX_CACHE_SECONDS, 60),
        row_cap=_clean_whole(row_cap, "row_cap", 1, MAX_ROW_CAP, 500),
        allow_csv=bool(allow_csv),
        show_last_good=bool(show_last_good),
        created_by=by,
    )


def _require_manager(by, embed: Embed, action: str) -> None:
    if not can_manage_embed(user=by, embed=embed):
        raise PermissionDenied(
            f"Only the embed's creator and the {embed.product.domain.name} team's owners and "
            f"stewards {action}."
        )


def embed_disable(*, embed: Embed, by) -> Embed:
    """Stop the embed: its next data call is refused (404), its page shows nothing."""
    _require_manager(by, embed, "disable it")
    if embed.disabled_at is None:
        embed.disabled_at = timezone.now()
        embed.disabled_by = by
        embed.save(update_fields=["disabled_at", "disabled_by", "updated_at"])
    return embed


def embed_enable(*, embed: Embed, by) -> Embed:
    _require_manager(by, embed, "enable it")
    if embed.disabled_at is not None:
        embed.disabled_at = None
        embed.disabled_by = None
        embed.save(update_fields=["disabled_at", "disabled_by", "updated_at"])
    return embed


def embed_token_deny(*, embed: Embed, jti: str, by) -> EmbedDeniedToken:
    """Refuse the token `jti` from its next request on, before it expires."""
    _require_manager(by, embed, "deny its tokens")
    jti = (jti or "").strip() if isinstance(jti, str) else ""
    if not jti or len(jti) > 200:
        raise ValidationError({"jti": "Give the token's id (its jti claim), 1 to 200 characters."})
    try:
        with transaction.atomic():
            return EmbedDeniedToken.objects.create(embed=embed, jti=jti, denied_by=by)
    except IntegrityError:
        return EmbedDeniedToken.objects.get(embed=embed, jti=jti)
