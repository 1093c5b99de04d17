"""Figures of sync runs for the pages and the API: a run's duration and records per
second, and the run history as a chart (records added, changed, removed and rejected per
run, stacked bars; records per second as a line), a plain plotly.js figure drawn by
static/js/charts.js (portal.core.charts; pages load it with `{% plotly_assets %}`)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.utils.safestring import SafeString

from portal.core.charts import figure_html
from sharing.models.syncs import SyncRun, SyncRunStatus

SERIES = (
    ("added", "Added", "#3347d1"),
    ("changed", "Changed", "#0f766e"),
    ("removed", "Removed", "#b45309"),
    ("rejected", "Rejected", "#b91c1c"),
)
RATE_COLOR = "#6b7280"


def run_duration(run: SyncRun) -> float | None:
    """Seconds from the run's start to its end (None until it has both)."""
    if not run.started_at or not run.finished_at:
        return None
    return round((run.finished_at - run.started_at).total_seconds(), 3)


def run_sent(run: SyncRun) -> int:
    """Records sent to the destination: added + changed + removed (a dry run sends none)."""
    return 0 if run.dry_run else run.added + run.changed + run.removed


def run_records_per_second(run: SyncRun) -> float | None:
    seconds = run_duration(run)
    sent = run_sent(run)
    if not seconds or not sent:
        return None
    return round(sent / seconds, 1)


def sync_runs_chart(rows: list[dict], *, tz: str = "UTC") -> SafeString | None:
    """The chart of a sync's runs from sync_run_chart_rows (oldest first): its container
    and figure (portal.core.charts.figure_html); None with fewer than two runs."""
    if len(rows) < 2:
        return None
    zone = ZoneInfo(tz)
    when = [row["at"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") for row in rows]
    hover = [[row["run_id"], SyncRunStatus(row["status"]).label] for row in rows]
    data: list[dict] = [
        {
            "type": "bar",
            "x": when,
            "y": [row[field] for row in rows],
            "name": label,
            "marker": {"color": color},
            "customdata": hover,
            "hovertemplate": f"run #%{{customdata[0]}} (%{{customdata[1]}}): "
            f"%{{y:,}} {label.lower()}<extra></extra>",
        }
        for field, label, color in SERIES
    ]
    data.append(
        {
            "type": "scatter",
            "x": when,
            "y": [row["records_per_s"] for row in rows],
            "name": "Records/s",
            "yaxis": "y2",
            "mode": "lines+markers",
            "line": {"color": RATE_COLOR, "width": 2},
            "hovertemplate": "%{y:,.0f} records/s<extra></extra>",
        }
    )
    layout = {
        "barmode": "stack",
        "height": 260,
        "margin": {"l": 56, "r": 56, "t": 8, "b": 36},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "xaxis": {"type": "date", "gridcolor": "#eef0f6", "title": {"text": tz}},
        "yaxis": {"title": {"text": "records"}, "rangemode": "tozero", "gridcolor": "#eef0f6"},
        "yaxis2": {
            "title": {"text": "records/s"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
        "legend": {"orientation": "h", "y": -0.3},
        "hovermode": "x unified",
        "bargap": 0.4,
    }
    return figure_html(
        {"data": data, "layout": layout}, config={"displaylogo": False, "responsive": True}
    )
