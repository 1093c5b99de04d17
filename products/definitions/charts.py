"""The chart of a metric's values, as a plotly figure (data and layout) the page hands to
plotly.js through `json_script`; static/js/metrics.js draws it. No inline script: the
figure is JSON data, plotly.js comes from our own static files."""

from __future__ import annotations

from collections import OrderedDict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from products.definitions.services.metrics import MetricResult
from products.trust.charts import COLORS

MAX_SERIES = 12  # lines on one chart; the others are summed into "other"
HEIGHT = 360


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, int | float):
        return value
    return None


def _label(value: Any) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _layout(*, y_title: str, x_type: str, legend: bool) -> dict:
    return {
        "height": HEIGHT,
        "margin": {"l": 64, "r": 16, "t": 8, "b": 48},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "xaxis": {"gridcolor": "#eef0f6", "linecolor": "#c6cbd8", "type": x_type},
        "yaxis": {"title": {"text": y_title}, "gridcolor": "#eef0f6", "rangemode": "tozero"},
        "showlegend": legend,
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "x unified" if x_type == "date" else "closest",
    }


def metric_figure(result: MetricResult) -> dict | None:
    """A line per combination of dimension values over the periods, or bars per
    combination without a grain; None for a single number (the page shows it as such)."""
    dimensions = list(result.query.dimensions)
    rows = result.rows
    if not rows or (not result.query.grain and not dimensions):
        return None
    y_title = result.metric.name
    if result.query.grain:
        series: OrderedDict[str, dict[str, Any]] = OrderedDict()
        totals: dict[str, float] = {}
        for row in rows:
            name = " · ".join(_label(row[d]) for d in dimensions) or result.metric.name
            x = _label(row["period"])
            value = _number(row["value"])
            points = series.setdefault(name, {})
            points[x] = value
            totals[name] = totals.get(name, 0.0) + abs(value or 0)
        names = sorted(series, key=lambda n: -totals[n])
        shown, rest = names[:MAX_SERIES], names[MAX_SERIES:]
        data = []
        for index, name in enumerate(sorted(shown)):
            xs = sorted(series[name])
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers" if len(xs) < 60 else "lines",
                    "name": name,
                    "x": xs,
                    "y": [series[name][x] for x in xs],
                    "line": {"color": COLORS[index % len(COLORS)], "width": 2},
                }
            )
        if rest and result.metric.aggregation in ("sum", "count") and not result.metric.is_ratio:
            other: dict[str, float] = {}
            for name in rest:
                for x, value in series[name].items():
                    other[x] = other.get(x, 0.0) + (value or 0)
            xs = sorted(other)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": f"{len(rest)} others",
                    "x": xs,
                    "y": [other[x] for x in xs],
                    "line": {"color": "#9aa1b2", "width": 1, "dash": "dot"},
                }
            )
        return {
            "data": data,
            "layout": _layout(y_title=y_title, x_type="date", legend=len(data) > 1),
        }
    labels = [" · ".join(_label(row[d]) for d in dimensions) for row in rows]
    return {
        "data": [
            {
                "type": "bar",
                "x": labels,
                "y": [_number(row["value"]) for row in rows],
                "marker": {"color": COLORS[0]},
                "name": result.metric.name,
            }
        ],
        "layout": _layout(y_title=y_title, x_type="category", legend=False),
    }
