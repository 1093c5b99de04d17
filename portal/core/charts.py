"""plotly charts without inline script: a container and the figure as JSON
(`json_script`), drawn by static/js/charts.js with plotly.js from our static files.
Pages load both with `{% plotly_assets %}` (portal_assets)."""

from __future__ import annotations

import uuid

import plotly.graph_objects as go
from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString
from plotly.utils import PlotlyJSONEncoder


def figure_html(fig: go.Figure, *, config: dict | None = None) -> SafeString:
    element_id = f"plotly-figure-{uuid.uuid4().hex[:12]}"
    figure = fig.to_plotly_json()
    payload = {"data": figure.get("data", []), "layout": figure.get("layout", {})}
    payload["config"] = config or {}
    return format_html(
        '<div class="plotly-graph-div plotly-chart" data-plotly-figure="{}"></div>{}',
        element_id,
        json_script(payload, element_id, encoder=PlotlyJSONEncoder),
    )
