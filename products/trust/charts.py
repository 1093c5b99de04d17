"""Charts of a product's trust evidence, drawn by plotly.js in the browser.

Each function returns an HTML fragment (a container and the figure as JSON, drawn by
static/js/charts.js: no inline script, see portal.core.charts) or None when there is nothing
to draw, so the page can say so instead. plotly.js itself is not in the fragment: the page
loads it once from our own static files with `{% plotly_assets %}`, never from a CDN.

Figures are plain dicts in plotly.js's JSON shape (portal.core.charts says why). Every
30-day chart spans the whole window, and a chart an SLO measures shows its target as a
dashed line with a label.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone
from django.utils.safestring import SafeString

from portal.core.charts import TARGET_LABEL_MARGIN, figure_html, target_line
from products.choices import SLOKind
from products.models import ServiceLevelObjective, TrustScore
from products.trust.selectors import (
    CHART_DAYS,
    TRUST_FIGURES_CACHE_SECONDS,
    TRUST_FIGURES_FORMAT,
    Series,
    TrustFigures,
)
from products.trust.services.slo_measures import slo_threshold

HEIGHT = 240
TRUST_HEIGHT = 330
COLORS = ["#3347d1", "#1d7a46", "#b45309", "#7c3aed", "#0e7490", "#b42323"]
TARGET_COLOR = "#6d28d9"
CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
}
MARKERS_BELOW = 60  # points: fewer get a marker each, more are drawn as a line only


@dataclass(frozen=True)
class TargetLine:
    """An SLO target drawn across a chart: its value on the chart's y axis and its label."""

    y: float
    label: str


def quality_charts(
    *, figures: TrustFigures, history: list[dict], latest: TrustScore | None
) -> dict[str, SafeString | None]:
    """The quality tab's four charts over the last CHART_DAYS days (each None when there
    is nothing to draw), kept in the cache with the figures they draw (and the latest
    trust score, the last point of its history)."""
    score = (latest.pk, latest.computed_at.isoformat()) if latest is not None else None
    key = f"trust-charts:{TRUST_FIGURES_FORMAT}:{figures.version}:{score}"
    charts = cache.get(key)
    if charts is not None:
        return charts
    now = timezone.now()
    # The whole window, and a little past now so today's point is not cut at the edge.
    span = (now - timedelta(days=CHART_DAYS), now + timedelta(hours=12))
    targets = slo_target_lines(report.slo for report in figures.slo_reports)
    charts = {
        "trust": trust_history_chart(history, x_range=span),
        "row_count": lines_chart(figures.series["row_count"], y_title="rows", x_range=span),
        "freshness": lines_chart(
            figures.series["freshness"],
            y_title="hours behind",
            x_range=span,
            target=targets.get(SLOKind.FRESHNESS),
        ),
        "pass_rate": pass_rate_chart(
            figures.pass_rate, x_range=span, target=targets.get(SLOKind.QUALITY)
        ),
        # Stream ports only (None without one): the stream monitors' figures.
        "messages_per_minute": lines_chart(
            figures.series["messages_per_minute"], y_title="messages / min", x_range=span
        ),
        "consumer_lag": lines_chart(
            figures.series["consumer_lag"],
            y_title="messages behind",
            x_range=span,
            target=targets.get(SLOKind.CONSUMER_LAG),
        ),
        "invalid_per_minute": lines_chart(
            figures.series["invalid_per_minute"],
            y_title="invalid / min",
            x_range=span,
            target=targets.get(SLOKind.INVALID_MESSAGES),
        ),
    }
    cache.set(key, charts, TRUST_FIGURES_CACHE_SECONDS)
    return charts


def slo_target_lines(slos: Iterable[ServiceLevelObjective]) -> dict[str, TargetLine]:
    """The target line of each SLO a chart measures, by SLO kind: freshness on the
    freshness-lag chart (hours), quality on the pass-rate chart (% passing)."""
    lines = {}
    for slo in slos:
        target = f"{slo.target_percent:g}"  # 99, 97.5, 99.95
        if slo.kind == SLOKind.FRESHNESS and slo.threshold_hours is not None:
            hours = f"{slo.threshold_hours:g}"
            lines[slo.kind] = TargetLine(
                y=float(slo.threshold_hours),
                label=f"SLO: at most {hours} h behind, {target}% of the time",
            )
        elif slo.kind == SLOKind.QUALITY:
            lines[slo.kind] = TargetLine(
                y=float(slo.target_percent), label=f"SLO: {target}% of evaluations passing"
            )
        elif slo.kind == SLOKind.CONSUMER_LAG:
            lines[slo.kind] = TargetLine(
                y=slo_threshold(slo),
                label=f"SLO: at most {slo_threshold(slo):g} messages behind, {target}% of the time",
            )
        elif slo.kind == SLOKind.INVALID_MESSAGES:
            lines[slo.kind] = TargetLine(
                y=slo_threshold(slo),
                label=f"SLO: at most {slo_threshold(slo):g} invalid / min, {target}% of the time",
            )
    return lines


def _layout(
    *,
    y_title: str,
    x_range: tuple[datetime, datetime] | None = None,
    y_range: list[float] | None = None,
    legend: bool = False,
    height: int = HEIGHT,
    target: TargetLine | None = None,
) -> dict:
    """The look every chart shares; all 30-day charts span the same 30 days, so a
    product with a week of history shows an empty start rather than a stretched week."""
    xaxis = {"gridcolor": "#eef0f6", "linecolor": "#c6cbd8", "type": "date", "tickformat": "%d %b"}
    if x_range:
        xaxis["range"] = [x_range[0], x_range[1]]
        xaxis["autorange"] = False
    layout = {
        "height": height,
        "margin": {"l": 56, "r": 16, "t": 8, "b": 36},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "xaxis": xaxis,
        "yaxis": {
            "title": {"text": y_title},
            "gridcolor": "#eef0f6",
            "zeroline": False,
            **({"range": y_range} if y_range else {"rangemode": "tozero"}),
        },
        "showlegend": legend,
        "legend": {"orientation": "h", "y": -0.25},
        "hovermode": "x unified",
    }
    if target is not None:
        shape, annotation = target_line(y=target.y, label=target.label, color=TARGET_COLOR)
        layout["shapes"] = [shape]
        layout["annotations"] = [annotation]
        layout["margin"]["t"] = TARGET_LABEL_MARGIN
    return layout


def _mode(points: int) -> str:
    return "lines+markers" if points < MARKERS_BELOW else "lines"


def trust_history_chart(
    history: list[dict], *, x_range: tuple[datetime, datetime] | None = None
) -> SafeString | None:
    if not history:
        return None
    trace = {
        "type": "scatter",
        "x": [point["computed_at"] for point in history],
        "y": [point["score"] for point in history],
        "mode": _mode(len(history)),
        "line": {"color": COLORS[0], "width": 2, "shape": "hv"},
        "name": "Trust score",
        "hovertemplate": "%{y:.0f}<extra></extra>",
    }
    layout = _layout(y_title="score", x_range=x_range, y_range=[0, 100], height=TRUST_HEIGHT)
    return figure_html({"data": [trace], "layout": layout}, config=CONFIG)


def lines_chart(
    series: list[Series],
    *,
    y_title: str,
    x_range: tuple[datetime, datetime] | None = None,
    target: TargetLine | None = None,
) -> SafeString | None:
    """One line per port (row count, freshness lag), with the SLO's target if any."""
    series = [s for s in series if s.x]
    if not series:
        return None
    traces = [
        {
            "type": "scatter",
            "x": line.x,
            "y": line.y,
            "mode": _mode(len(line.x)),
            "name": line.name,
            "line": {"color": COLORS[index % len(COLORS)], "width": 2},
            "hovertemplate": "%{y:,}",
        }
        for index, line in enumerate(series)
    ]
    layout = _layout(y_title=y_title, x_range=x_range, legend=len(series) > 1, target=target)
    return figure_html({"data": traces, "layout": layout}, config=CONFIG)


def pass_rate_chart(
    series: Series,
    *,
    x_range: tuple[datetime, datetime] | None = None,
    target: TargetLine | None = None,
) -> SafeString | None:
    if not series.x:
        return None
    # Markers, not bars: a day when nothing passed is a red dot at 0, not an empty chart.
    trace = {
        "type": "scatter",
        "x": series.x,
        "y": series.y,
        "mode": "lines+markers",
        "line": {"color": "#c6cbd8", "width": 1},
        "marker": {"color": [_pass_colour(value) for value in series.y], "size": 9},
        "name": series.name,
        "hovertemplate": "%{y:.1f}% passing<extra></extra>",
    }
    layout = _layout(y_title="% passing", x_range=x_range, y_range=[-5, 105], target=target)
    return figure_html({"data": [trace], "layout": layout}, config=CONFIG)


def _pass_colour(value: float | None) -> str:
    if value is None:
        return "#c6cbd8"
    if value >= 99.5:
        return "#1d7a46"
    if value >= 90:
        return "#b45309"
    return "#b42323"
