"""plotly charts without inline script: a container and the figure as JSON
(`json_script`), drawn by static/js/charts.js with plotly.js from our static files.
Pages load both with `{% plotly_assets %}` (portal_assets).

Figures are plain dicts in plotly.js's own JSON shape ({"data": [...], "layout": {...}}):
building them through plotly.graph_objects validated and deep-copied every point, which
cost most of a chart page's time, and plotly.js validates the figure again anyway."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal

from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString


class FigureJSONEncoder(json.JSONEncoder):
    """Dates as ISO 8601 (what plotly.js reads on a date axis), decimals as numbers."""

    def default(self, o):
        if isinstance(o, datetime | date):
            return o.isoformat()
        if isinstance(o, Decimal):
            return float(o)
        return super().default(o)


def figure_html(figure: dict, *, config: dict | None = None) -> SafeString:
    """The chart's container and its figure (`data`, `layout`) with `config` as JSON."""
    element_id = f"plotly-figure-{uuid.uuid4().hex[:12]}"
    payload = {
        "data": figure.get("data", []),
        "layout": figure.get("layout", {}),
        "config": config or {},
    }
    return format_html(
        '<div class="plotly-graph-div plotly-chart" data-plotly-figure="{}"></div>{}',
        element_id,
        json_script(payload, element_id, encoder=FigureJSONEncoder),
    )


def target_line(*, y: float, label: str, color: str = "#7c3aed") -> tuple[dict, dict]:
    """A dashed horizontal line across the whole plot at `y` (an SLO target), and its
    label: a layout shape and a layout annotation. The label sits above the plot, at its
    right end, drawn with a dashed sample of the line, so it never hides a data point
    (a layout using it leaves TARGET_LABEL_MARGIN at the top)."""
    shape = {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "yref": "y",
        "y0": y,
        "y1": y,
        "line": {"color": color, "width": 1.5, "dash": "dash"},
        "layer": "above",
    }
    annotation = {
        "xref": "paper",
        "x": 1,
        "xanchor": "right",
        "yref": "paper",
        "y": 1,
        "yanchor": "bottom",
        "text": f"- - {label}",
        "showarrow": False,
        "font": {"color": color, "size": 11},
    }
    return shape, annotation


TARGET_LABEL_MARGIN = 22  # pixels above the plot for a target's label
