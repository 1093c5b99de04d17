"""Template helpers of the trust pages: the trust badge, outcome and incident badges, and
the trust part of every product page's header."""

from django import template
from django.utils.html import format_html

from portal.templatetags.portal_tags import choice_badge
from products.choices import (
    ROW_LEVEL_CHECKS,
    CheckKind,
    CheckOutcome,
    CheckRunStatus,
    IncidentStatus,
    Severity,
)
from products.trust.selectors import trust_header_context, trust_level

register = template.Library()

LEVEL_LABELS = {"good": "good", "fair": "fair", "poor": "poor", "none": "not scored yet"}


TRUST_HEADER_KEYS = ("trust_score", "trust_level", "open_incidents", "quality_url")


@register.simple_tag(takes_context=True)
def product_trust(context, product) -> dict:
    """The trust part of every product page's header, read here (the template layer) so
    that pages of features below trust show it without importing trust: the trust score
    (badge), the unresolved incidents (banner, tab alert) and the Quality tab's address.
    Two queries, once per page: a page that read them already (the Quality tab) has them in
    its context, and a second use on the same page (the overview's trust card) reuses the
    first."""
    if all(key in context for key in TRUST_HEADER_KEYS):
        return {key: context[key] for key in TRUST_HEADER_KEYS}
    cached = getattr(product, "_page_trust", None)
    if cached is None:
        cached = trust_header_context(product=product)
        product._page_trust = cached
    return cached


@register.filter(name="trust_level")
def trust_level_filter(score):
    return trust_level(score)


@register.simple_tag
def trust_badge(score, size: str = ""):
    """The trust score (0 to 100) as a coloured badge: green 80+, amber 60+, red below."""
    level = trust_level(score)
    if level == "none":
        score = None
    text = "–" if score is None else f"{score:.0f}"
    label = (
        "Trust score: not computed yet"
        if score is None
        else f"Trust score {score:.0f} out of 100 ({LEVEL_LABELS[level]})"
    )
    return format_html(
        '<span class="trust-badge trust-{}{}" title="{}"><span class="visually-hidden">{}</span>'
        '<span aria-hidden="true"><span class="trust-word">Trust</span> {}</span></span>',
        level,
        f" trust-badge-{size}" if size else "",
        label,
        label,
        text,
    )


@register.simple_tag
def outcome_badge(outcome: str):
    return choice_badge(CheckOutcome, outcome, "outcome", empty_label="Not run")


@register.simple_tag
def severity_badge(severity: str):
    return choice_badge(Severity, severity, "severity")


@register.simple_tag
def incident_badge(status: str):
    return choice_badge(IncidentStatus, status, "incident")


@register.simple_tag
def check_run_badge(status: str):
    return choice_badge(CheckRunStatus, status, "checkrun")


@register.filter
def percent(value, digits: int = 1):
    """62.5 -> '62.5%'; None -> '—'."""
    if value is None:
        return "—"
    return f"{float(value):.{int(digits)}f}%"


@register.filter
def observed(result):
    """A result's observed value in the words of its check."""
    if result is None or result.observed_value is None:
        return "—"
    value = result.observed_value
    kind = result.quality_check.kind if result.quality_check_id else ""
    if kind == "freshness":
        return f"{value:.1f} h old"
    if kind == "volume_change":
        return f"{value:+.1f}%"
    if kind == "schema":
        return f"{value:.0f} difference{'s' if value != 1 else ''}"
    if kind == "row_count":
        return f"{value:,.0f} rows"
    if result.failing_rows is not None:
        share = f" ({result.failing_percent:.3g}%)" if result.failing_percent is not None else ""
        return f"{result.failing_rows:,} failing{share}"
    return f"{value:g}"


def _num(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value}"


@register.filter
def check_rule(check) -> str:
    """What the check demands, in words, from its kind and params."""
    params = check.params or {}
    kind = check.kind
    if kind == "not_null":
        return "no empty values"
    if kind == "unique":
        return "no repeated values"
    if kind == "accepted_values":
        values = [str(v) for v in params.get("values", [])]
        shown = ", ".join(values[:5]) + (f" and {len(values) - 5} more" if len(values) > 5 else "")
        return f"one of: {shown}"
    if kind == "range":
        low, high = params.get("min"), params.get("max")
        if low is not None and high is not None:
            return f"between {_num(low)} and {_num(high)}"
        return f"at least {_num(low)}" if low is not None else f"at most {_num(high)}"
    if kind == "pattern":
        return f"matches {params.get('regex', '')}"
    if kind == "row_count":
        low, high = params.get("min"), params.get("max")
        parts = []
        if low is not None:
            parts.append(f"at least {_num(low)} row{'s' if low != 1 else ''}")
        if high is not None:
            parts.append(f"at most {_num(high)} row{'s' if high != 1 else ''}")
        return " and ".join(parts)
    if kind == "freshness":
        return f"newest value at most {_num(params.get('max_age_hours'))} h old"
    if kind == "volume_change":
        window = params.get("window", 7)
        return (
            f"row count within {_num(params.get('max_change_percent'))}% of the median "
            f"of the last {window} counts"
        )
    if kind == "schema":
        return "columns and types as declared"
    if kind == "custom_sql":
        return "custom SQL: failing rows counted"
    return ""


@register.filter
def tolerance(check) -> str:
    """The share of failing rows a row-level check allows."""
    if check.kind in (*ROW_LEVEL_CHECKS, CheckKind.CUSTOM_SQL):
        if not check.tolerance_percent:
            return "none"
        return f"≤ {check.tolerance_percent:g}% of rows"
    return "—"


@register.filter
def sample_table(sample) -> dict:
    """Failing rows (a list of dicts) as columns and rows for a table."""
    columns: list[str] = []
    for row in sample or []:
        for name in row:
            if name not in columns:
                columns.append(name)
    rows = [[row.get(name) for name in columns] for row in sample or []]
    return {"columns": columns, "rows": rows}
