"""Indexes the catalog's search and listings need at 100,000 products (bench/catalog.py).
PostgreSQL only, and created with SQL so that the models' state is unchanged.

- product_name_search_gin: finds products whose *name* matches the search text, so a
  broad search (thousands of matches) always includes them in the ranked window
  (products.catalog.selectors._text_match).
- product_domain_name_idx: a domain's products in name order (domain pages, the domain
  facet) without sorting the domain's whole list.
- product_visibility_idx: status and domain are what DataProduct.objects.visible_to()
  filters on; with the id, counting and listing the visible products is an index-only
  scan instead of a pass over the wide product rows.
"""

from django.db import migrations

INDEXES = {
    "product_name_search_gin": (
        "ON products_dataproduct USING gin (to_tsvector('english'::regconfig, name))"
    ),
    "product_domain_name_idx": "ON products_dataproduct (domain_id, name)",
    "product_visibility_idx": "ON products_dataproduct (status, domain_id, id)",
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, definition in INDEXES.items():
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} {definition}")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("products", "0002_search_vector_gin")]
    operations = [migrations.RunPython(create_indexes, drop_indexes)]
