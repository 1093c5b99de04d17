"""A chart of a query's answer, when one says more than the table: a first column of
labels or dates and one to three numeric columns (bars, or lines over dates)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.utils.safestring import SafeString

from portal.core.charts import figure_html

MAX_POINTS = 500
MAX_SERIES = 3
COLORS = ("#3347d1", "#0f766e", "#b45309")


def _number(value) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def result_chart(columns: list[str], rows: list[list]) -> SafeString | None:
    """The figure of an answer (portal.core.charts), or None when it has no shape a
    chart shows well (one column, no numbers, a single row, too many rows)."""
    if len(columns) < 2 or not 2 <= len(rows) <= MAX_POINTS:
        return None
    labels = [row[0] for row in rows]
    if any(_number(value) for value in labels if value is not None) and not all(
        isinstance(value, date | datetime) for value in labels
    ):
        return None  # a numeric first column: an id or a measure, not a label
    numeric = [
        index
        for index in range(1, len(columns))
        if all(row[index] is None or _number(row[index]) for row in rows)
        and any(row[index] is not None for row in rows)
    ][:MAX_SERIES]
    if not numeric:
        return None
    over_time = all(isinstance(value, date | datetime) for value in labels)
    x = [value if over_time else ("(null)" if value is None else str(value)) for value in labels]
    data = [
        {
            "type": "scatter" if over_time else "bar",
            "mode": "lines+markers" if over_time else None,
            "x": x,
            "y": [row[index] for row in rows],
            "name": columns[index],
            "marker": {"color": COLORS[position]},
        }
        for position, index in enumerate(numeric)
    ]
    for trace in data:
        if trace["mode"] is None:
            del trace["mode"]
    layout = {
        "height": 320,
        "margin": {"l": 60, "r": 20, "t": 20, "b": 80},
        "barmode": "group",
        "xaxis": {"title": {"text": columns[0]}, "automargin": True},
        "yaxis": {"title": {"text": columns[numeric[0]] if len(numeric) == 1 else ""}},
        "showlegend": len(numeric) > 1,
    }
    return figure_html({"data": data, "layout": layout}, config={"displaylogo": False})
