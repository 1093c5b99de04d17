"""A column's distinct values, offered by the row-filter builder when there are few.

The values are read like any rows: `read_plan` asks the one access decision (a column
outside the reader's access is refused, the reader's own row filter applies, a masked
column offers nothing) and the read is audited, as `fmt="distinct values"`.
"""

from __future__ import annotations

from typing import Any

from products.connectors import Connector, ConnectorError
from products.models import DataProduct
from sharing.access.filters import compile_clauses
from sharing.choices import Channel
from sharing.serving.reads import ReadRefused, read_plan, read_query

FEW_VALUES = 30  # more than this: the builder takes a value typed by hand
TIMEOUT_SECONDS = 5


def column_distinct_values(
    *, user, product: DataProduct, column: str, port_slug: str | None = None
) -> list[Any] | None:
    """Up to FEW_VALUES distinct values of `column` (sorted, without NULL) as `user` may
    read them, or None when there are more, when the column is masked for them, or when
    the source could not be read. Raises ReadRefused (403/400/404) as a read would."""
    if port_slug is None:
        port_slug = (
            product.ports.filter(columns__name=column)
            .order_by("name")
            .values_list("slug", flat=True)
            .first()
        )
        if port_slug is None:
            raise ReadRefused(400, f"Unknown column: {column}.")
    plan = read_plan(
        user=user,
        product=product,
        channel=Channel.WEB,
        port_slug=port_slug,
        columns=[column],
        limit=FEW_VALUES + 1,
    )
    if plan.masked:
        return None

    def statement(connector: Connector) -> tuple[str, list[Any]]:
        quoted = connector.quote_ident(column)
        where, params = compile_clauses(
            plan.clauses, quote=connector.quote_ident, placeholder=lambda: connector.paramstyle
        )
        sql = f"SELECT DISTINCT {quoted} FROM {connector.relation_sql()} WHERE {quoted} IS NOT NULL"
        if where:
            sql += f" AND {where}"
        return f"{sql} ORDER BY 1 LIMIT {FEW_VALUES + 1}", params

    try:
        rows = read_query(
            plan, statement=statement, fmt="distinct values", timeout_seconds=TIMEOUT_SECONDS
        )
    except ConnectorError:
        return None  # the builder falls back to a typed value; the audit has the error
    if len(rows) > FEW_VALUES:
        return None
    return [row[0] for row in rows]
