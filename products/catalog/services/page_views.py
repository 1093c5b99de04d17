"""Recording product page views: one UPSERT per view, nothing else. The catalog records the
views of its product page; usage (a feature above) summarises them.

Whose views count: every signed-in person who opens the product page, except its
editors (the domain's owners and stewards, and admins), whose visits while they maintain
the product would make an unused product look used. API reads of the metadata are not
page views; data reads are counted from the audit, not here."""

from __future__ import annotations

from datetime import date

from django.db import connection
from django.utils import timezone

from products.models import DataProduct, ProductPageView


def _upsert_sql() -> str:
    meta = ProductPageView._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    product, user, day, views = (
        quote(meta.get_field(name).column) for name in ("product", "user", "day", "views")
    )
    # PostgreSQL and SQLite (3.24+) both speak INSERT ... ON CONFLICT ... DO UPDATE.
    return (
        f"INSERT INTO {table} ({product}, {user}, {day}, {views}) VALUES (%s, %s, %s, 1) "
        f"ON CONFLICT ({product}, {day}, {user}) DO UPDATE SET {views} = {table}.{views} + 1"
    )


def product_view_record(
    *, product: DataProduct, user, by_editor: bool, day: date | None = None
) -> bool:
    """Count one view of the product page by `user` on `day` (default: today, UTC).

    `by_editor` is whether the user may edit the product (the page knows it already):
    editors' views are not counted. Returns whether the view was counted. Costs exactly
    one statement: an INSERT that adds 1 to the day's row when it exists."""
    if by_editor or user is None or not user.is_authenticated:
        return False
    day = day or timezone.now().date()
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(), [product.pk, user.pk, day])
    return True
