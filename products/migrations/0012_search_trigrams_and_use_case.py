"""Search that forgives typos (issue 15), PostgreSQL only; SQLite migrates through it
unchanged (its search reads candidates with LIKE, products.catalog.selectors).

- pg_trgm, and trigram indexes on the words a misspelt search word is corrected against:
  product names, tag names and column names (products.catalog.selectors
  ._catalog_words_close_to).
- The search document now holds the use case too (weight C, with the description), so
  "churn" finds the product whose use case is churn analysis: rebuilt here for every
  product (products.catalog.services.search_index has the same statement).
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = {
    "product_name_trgm": "ON products_dataproduct USING gin (name gin_trgm_ops)",
    "tag_name_trgm": "ON products_tag USING gin (name gin_trgm_ops)",
    "column_name_trgm": "ON products_column USING gin (name gin_trgm_ops)",
}

# The search document as products.catalog.services.search_index writes it (frozen here).
REBUILD_SEARCH_DOCUMENTS = """
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


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, definition in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} {definition}")
    schema_editor.execute(REBUILD_SEARCH_DOCUMENTS)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("products", "0011_source_allowances")]
    # TrigramExtension does nothing on databases other than PostgreSQL.
    operations = [TrigramExtension(), migrations.RunPython(forwards, backwards)]
