"""The embed page's chart of its views: views per day over the last 30 days, stacked by
tenant (the most viewed few, the rest together), a plain plotly.js figure drawn by
static/js/charts.js (portal.core.charts; the page loads it with `{% plotly_assets %}`)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from django.utils.html import escape
from django.utils.safestring import SafeString

from portal.core.charts import figure_html

TENANTS_DRAWN = 5
COLORS = ("#3347d1", "#0f766e", "#b45309", "#7c3aed", "#be185d")
OTHERS_COLOR = "#9ca3af"
NO_TENANT = "(no locked parameters)"
OTHERS = "other tenants"


def tenant_label(tenant: str) -> str:
    return tenant or NO_TENANT


def embed_views_chart(rows: list[dict], *, since: date, until: date) -> SafeString | None:
    """The chart of embed_views_by_day's rows (day, tenant, views), every day from `since`
    to `until` on its axis; None when there are no views to draw."""
    if not any(row["views"] for row in rows):
        return None
    days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    totals: dict[str, int] = defaultdict(int)
    for row in rows:
        totals[row["tenant"]] += row["views"]
    ranked = sorted(totals, key=lambda tenant: (-totals[tenant], tenant))
    drawn = ranked[:TENANTS_DRAWN]
    per_series: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        series = row["tenant"] if row["tenant"] in drawn else OTHERS
        per_series[series][row["day"]] += row["views"]
    names = [*drawn, *([OTHERS] if len(ranked) > TENANTS_DRAWN else [])]
    data = []
    for index, name in enumerate(names):
        label = OTHERS if name == OTHERS else tenant_label(name)
        data.append(
            {
                "type": "bar",
                "x": [day.isoformat() for day in days],
                "y": [per_series[name].get(day, 0) for day in days],
                # plotly reads tags in names: tenant values come from host tokens.
                "name": escape(label),
                "marker": {"color": OTHERS_COLOR if name == OTHERS else COLORS[index]},
                "hovertemplate": "%{fullData.name}: %{y:,} views<extra></extra>",
            }
        )
    layout = {
        "barmode": "stack",
        "height": 240,
        "margin": {"l": 48, "r": 16, "t": 8, "b": 36},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "xaxis": {"type": "date", "gridcolor": "#eef0f6"},
        "yaxis": {"title": {"text": "views"}, "rangemode": "tozero", "gridcolor": "#eef0f6"},
        "legend": {"orientation": "h", "y": -0.25},
        "hovermode": "x unified",
        "bargap": 0.3,
    }
    return figure_html(
        {"data": data, "layout": layout}, config={"displaylogo": False, "responsive": True}
    )
