"""Keeps each product's weighted full-text document up to date (PostgreSQL).

Weights: A name; B summary, tags and domain; C description and use case; D column names
and descriptions. The document finds the candidates of a search on PostgreSQL; their ranking
is products.catalog.search, the same on SQLite. Every service that changes one of these
calls product_search_index_update.
"""

import time
from collections.abc import Iterable

from django.core.cache import cache
from django.db import connection, transaction

from products.catalog.selectors import CATALOG_GENERATION_KEY

_UPDATE_SQL = """
UPDATE products_dataproduct AS p SET search_vector =
    setweight(to_tsvector('english', coalesce(p.name, '')), 'A')
 || setweight(to_tsvector('english', coalesce(p.summary, '') || ' ' || coalesce(d.name, '')
        || ' ' || coalesce((
            SELECT string_agg(replace(t.name, '-', ' '), ' ')
            FROM products_tag t
            JOIN products_dataproduct_tags pt ON pt.tag_id = t.id
            WHERE pt.dataproduct_id = p.id), '')), 'B')
 || setweight(to_tsvector('english', coalesce(p.description, '') || ' '
        || coalesce(p.purpose_use_case, '')), 'C')
 || setweight(to_tsvector('english', coalesce((
            SELECT string_agg(c.name || ' ' || c.description, ' ')
            FROM products_column c
            JOIN products_outputport o ON o.id = c.port_id
            WHERE o.product_id = p.id), '')), 'D')
FROM products_domain AS d
WHERE d.id = p.domain_id
"""


def catalog_changed() -> None:
    """Start a new generation of the catalog: searches cached before it (windows of
    matches, facet counts; products.catalog.selectors.SearchWindows) are not read again. Now, and
    again when the transaction commits: a search that read the old rows meanwhile must not
    be cached under the new generation."""

    def new_generation() -> None:
        try:
            cache.incr(CATALOG_GENERATION_KEY)
        except ValueError:  # no generation yet (or the cache lost it): start one
            cache.set(CATALOG_GENERATION_KEY, time.time_ns(), None)

    new_generation()
    transaction.on_commit(new_generation)


def product_search_index_update(*, product_ids: Iterable[int] | None = None) -> None:
    """Rebuild the search documents of the given products (all when None)."""
    catalog_changed()
    if connection.vendor != "postgresql":
        return  # SQLite finds candidates with LIKE (products.catalog.selectors._window_ids).
    with connection.cursor() as cursor:
        if product_ids is None:
            cursor.execute(_UPDATE_SQL)
        else:
            ids = list(product_ids)
            if ids:
                cursor.execute(_UPDATE_SQL + " AND p.id = ANY(%s)", [ids])
