"""The run history of a schedule as a chart: file size (bars) and duration (line) of its
succeeded runs. Built here as plain JSON (plotly's figure format) for the page to embed
with json_script; static/js/exports.js draws it with plotly.js from our static files."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from sharing.choices import ExportStatus
from sharing.models import ExportRun

CHART_RUNS = 60
COLORS = ("#3347d1", "#b45309")


def export_runs_chart(runs: list[ExportRun], *, tz: str) -> dict | None:
    """Size and duration of the succeeded runs among `runs` (newest first), oldest to
    newest, with times in the schedule's time zone; None with fewer than two."""
    done = [
        run
        for run in runs
        if run.status == ExportStatus.SUCCEEDED and run.started_at and run.finished_at
    ][:CHART_RUNS]
    if len(done) < 2:
        return None

    # Here, not at the top: plotly (~30 MB) only where a schedule's page draws it, not in
    # every process that loads the URLs (a worker naming a page in an event).
    import plotly.graph_objects as go
    import plotly.io as pio

    zone = ZoneInfo(tz)
    done.reverse()
    when = [run.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") for run in done]
    fig = go.Figure()
    fig.add_bar(
        x=when,
        y=[run.bytes or 0 for run in done],
        name="File size",
        marker={"color": COLORS[0]},
        customdata=[[run.pk, run.rows or 0] for run in done],
        hovertemplate="run #%{customdata[0]}: %{y:.3s}B, %{customdata[1]:,} rows<extra></extra>",
    )
    fig.add_scatter(
        x=when,
        y=[round((run.finished_at - run.started_at).total_seconds(), 2) for run in done],
        name="Duration (s)",
        yaxis="y2",
        mode="lines+markers",
        line={"color": COLORS[1], "width": 2},
        hovertemplate="%{y:.1f} s<extra></extra>",
    )
    fig.update_layout(
        height=260,
        margin={"l": 56, "r": 56, "t": 8, "b": 36},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="#ffffff",
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        xaxis={"type": "date", "gridcolor": "#eef0f6", "title": {"text": tz}},
        yaxis={
            "title": {"text": "file size"},
            "tickformat": ".3s",
            "ticksuffix": "B",
            "rangemode": "tozero",
            "gridcolor": "#eef0f6",
        },
        yaxis2={
            "title": {"text": "seconds"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
        legend={"orientation": "h", "y": -0.3},
        hovermode="x unified",
        bargap=0.4,
    )
    figure = json.loads(pio.to_json(fig))
    figure["config"] = {"displaylogo": False, "responsive": True}
    return figure
