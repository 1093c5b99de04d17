"""EXPLAIN for people: before a query runs, what runs where, under which masks and row
filters, and how many rows PostgreSQL expects: governance you can read."""

from __future__ import annotations

from sharing.access.filters import clause_in_words
from sharing.federation.services.planning import query_plan
from sharing.federation.services.running import statements_for_sources


def query_explain(*, user, sql: str) -> dict:
    """The plan of `sql` for `user`, nothing run on the data. Raises QueryRefused as
    running it would."""
    plan = query_plan(user=user, sql=sql)
    products = []
    for item in plan.governed:
        read = item.plan
        products.append(
            {
                "product": item.reference.written,
                "alias": item.reference.alias,
                "port": read.port.slug,
                "access": read.decision.reason,
                "columns_read": sorted(item.columns),
                "masked": sorted(name for name in item.columns if name in read.masked),
                "row_filter": [clause_in_words(clause) for clause in read.clauses],
                "pushed_down": item.predicates_sql("postgres"),
                "source": read.port.source.name if read.port.source_id else "file",
            }
        )
    return {
        "engine": plan.engine,
        "engine_in_words": {
            "postgresql": "The whole query runs on its PostgreSQL source.",
            "duckdb": "The whole query runs on its DuckDB source.",
            "spark": "The whole query runs on its Spark source, in Spark's SQL (no cost "
            "estimate there: its time limit and row cap hold it).",
            "federated": "Each product is read from its source (only the columns and rows "
            "the query needs), then joined in the portal's DuckDB.",
        }[plan.engine],
        "products": products,
        "statements": statements_for_sources(plan),
    }
