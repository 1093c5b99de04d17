"""Charts of a product's trust evidence, drawn by plotly.js in the browser.

Each function returns an HTML fragment (a container and the figure as JSON, drawn by
static/js/charts.js: no inline script, see portal.core.charts) or None when there is nothing
to draw, so the page can say so instead. plotly.js itself is not in the fragment: the page
loads it once from our own static files with `{% plotly_assets %}`, never from a CDN.
"""

from __future__ import annotations

from datetime import datetime

import plotly.graph_objects as go
from django.utils.safestring import SafeString

from portal.core.charts import figure_html
from products.trust.selectors import Series

HEIGHT = 240
TRUST_HEIGHT = 330
COLORS = ["#3347d1", "#1d7a46", "#b45309", "#7c3aed", "#0e7490", "#b42323"]
CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
}


def _layout(
    *,
    y_title: str,
    x_range: tuple[datetime, datetime] | None = None,
    y_range: list[float] | None = None,
    legend: bool = False,
) -> dict:
    """The look every chart shares; all 30-day charts span the same 30 days, so a
    product with a week of history shows an empty start rather than a stretched week."""
    xaxis = {"gridcolor": "#eef0f6", "linecolor": "#c6cbd8", "type": "date", "tickformat": "%d %b"}
    if x_range:
        xaxis["range"] = [x_range[0].isoformat(), x_range[1].isoformat()]
    return {
        "height": HEIGHT,
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


def _html(fig: go.Figure, *, height: int = HEIGHT) -> SafeString:
    # A container and the figure as JSON, drawn by static/js/charts.js: no inline script.
    if fig.layout.height is None:
        fig.update_layout(height=height)
    return figure_html(fig, config=CONFIG)


def trust_history_chart(
    history: list[dict], *, x_range: tuple[datetime, datetime] | None = None
) -> SafeString | None:
    if not history:
        return None
    fig = go.Figure(
        go.Scatter(
            x=[point["computed_at"] for point in history],
            y=[point["score"] for point in history],
            mode="lines+markers" if len(history) < 60 else "lines",
            line={"color": COLORS[0], "width": 2, "shape": "hv"},
            name="Trust score",
            hovertemplate="%{y:.0f}<extra></extra>",
        )
    )
    fig.update_layout(**_layout(y_title="score", x_range=x_range, y_range=[0, 100]))
    fig.update_layout(height=TRUST_HEIGHT)
    return _html(fig, height=TRUST_HEIGHT)


def lines_chart(
    series: list[Series], *, y_title: str, x_range: tuple[datetime, datetime] | None = None
) -> SafeString | None:
    """One line per port (row count, freshness lag)."""
    series = [s for s in series if s.x]
    if not series:
        return None
    fig = go.Figure()
    for index, line in enumerate(series):
        fig.add_trace(
            go.Scatter(
                x=line.x,
                y=line.y,
                mode="lines+markers" if len(line.x) < 60 else "lines",
                name=line.name,
                line={"color": COLORS[index % len(COLORS)], "width": 2},
                hovertemplate="%{y:,}",
            )
        )
    fig.update_layout(**_layout(y_title=y_title, x_range=x_range, legend=len(series) > 1))
    return _html(fig)


def pass_rate_chart(
    series: Series, *, x_range: tuple[datetime, datetime] | None = None
) -> SafeString | None:
    if not series.x:
        return None
    # Markers, not bars: a day when nothing passed is a red dot at 0, not an empty chart.
    fig = go.Figure(
        go.Scatter(
            x=series.x,
            y=series.y,
            mode="lines+markers",
            line={"color": "#c6cbd8", "width": 1},
            marker={"color": [_pass_colour(value) for value in series.y], "size": 9},
            name=series.name,
            hovertemplate="%{y:.1f}% passing<extra></extra>",
        )
    )
    fig.update_layout(**_layout(y_title="% passing", x_range=x_range, y_range=[-5, 105]))
    return _html(fig)


def _pass_colour(value: float | None) -> str:
    if value is None:
        return "#c6cbd8"
    if value >= 99.5:
        return "#1d7a46"
    if value >= 90:
        return "#b45309"
    return "#b42323"
