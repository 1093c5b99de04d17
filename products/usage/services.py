"""Usage summaries: every product's page views (recorded by the catalog,
products.catalog.services.page_views) and data reads (the audit) over the dashboard's
windows, computed in the database by a periodic task."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from products.models import DataProduct, ProductPageView, ProductUsageSummary, UsageSummaryRun
from products.usage.selectors import DASHBOARD_WINDOW_DAYS, dashboard_windows, unused_among
from sharing.choices import AuditAction
from sharing.models import AccessEvent

# --- the dashboard's summaries ----------------------------------------------------------


def usage_summaries_refresh(*, now: datetime | None = None) -> UsageSummaryRun:
    """Recompute every product's usage summary in the database, in one transaction: an
    INSERT ... SELECT ... ON CONFLICT aggregating the windows' audit reads and page views
    (last 30 days, the 30 before, latest read in the unused window), the removal of the
    rows it did not write, then a second INSERT flagging the unused products
    (products_unused's rule). Its cost grows with the events in the window, paid once per run
    (a periodic task) instead of by every dashboard request. Safe to run twice: each run
    rewrites every row."""

    started = time.monotonic()
    now = now or timezone.now()
    windows = dashboard_windows(now=now)
    unused_days = settings.RETIREMENT_UNUSED_DAYS
    reads_since = min(windows.previous, now - timedelta(days=unused_days))
    ops, quote = connection.ops, connection.ops.quote_name
    event, view, summary = AccessEvent._meta, ProductPageView._meta, ProductUsageSummary._meta

    def col(meta, name: str) -> str:
        return quote(meta.get_field(name).column)

    e_product, e_at, e_action, e_user = (col(event, n) for n in ("product", "at", "action", "user"))
    v_product, v_day, v_views = (col(view, n) for n in ("product", "day", "views"))
    fields = [
        "product",
        "reads",
        "reads_previous",
        "readers",
        "views",
        "views_previous",
        "use",
        "growth",
        "last_read_at",
        "unused",
        "computed_at",
    ]
    columns = [col(summary, name) for name in fields]
    # Every row this run writes starts as "not unused"; the second statement flags the
    # unused ones.
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    recent, previous = (
        ops.adapt_datetimefield_value(v) for v in (windows.recent, windows.previous)
    )
    end = ops.adapt_datetimefield_value(windows.end)
    since = ops.adapt_datetimefield_value(reads_since)
    recent_day, previous_day, end_day = (
        ops.adapt_datefield_value(v)
        for v in (windows.recent_day, windows.previous_day, windows.end_day)
    )
    computed_at = ops.adapt_datetimefield_value(now)
    sql = f"""
        INSERT INTO {quote(summary.db_table)} ({", ".join(columns)})
        SELECT product_id, SUM(reads), SUM(reads_previous), SUM(readers), SUM(views),
               SUM(views_previous), SUM(reads) + SUM(views),
               SUM(reads) + SUM(views) - SUM(reads_previous) - SUM(views_previous),
               MAX(last_read_at), %s, %s
        FROM (
            SELECT {e_product} AS product_id,
                   COUNT(CASE WHEN {e_at} >= %s THEN 1 END) AS reads,
                   COUNT(CASE WHEN {e_at} >= %s AND {e_at} < %s THEN 1 END) AS reads_previous,
                   COUNT(DISTINCT CASE WHEN {e_at} >= %s THEN {e_user} END) AS readers,
                   0 AS views, 0 AS views_previous, MAX({e_at}) AS last_read_at
            FROM {quote(event.db_table)}
            WHERE {e_action} = %s AND {e_product} IS NOT NULL AND {e_at} >= %s AND {e_at} < %s
            GROUP BY {e_product}
            UNION ALL
            SELECT {v_product}, 0, 0, 0,
                   SUM(CASE WHEN {v_day} >= %s THEN {v_views} ELSE 0 END),
                   SUM(CASE WHEN {v_day} < %s THEN {v_views} ELSE 0 END),
                   NULL
            FROM {quote(view.db_table)}
            WHERE {v_day} >= %s AND {v_day} <= %s
            GROUP BY {v_product}
        ) AS activity
        WHERE 1 = 1
        GROUP BY product_id
        ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}
    """
    params = [
        *(False, computed_at),
        *(recent, previous, recent, recent),
        *(AuditAction.READ.value, since, end),
        *(recent_day, recent_day, previous_day, end_day),
    ]
    # Unused products (the one rule, products_unused's, with "read since the cutoff"
    # taken from the rows just written): flagged, with a row of zeros when they had no
    # use at all.
    cutoff = now - timedelta(days=unused_days)
    read_since = ProductUsageSummary.objects.filter(computed_at=now, last_read_at__gte=cutoff)
    unused_sql, unused_params = (
        unused_among(DataProduct.objects.all(), cutoff=cutoff, read_since=read_since)
        .order_by()
        .values("pk")
        .query.sql_with_params()
    )
    unused = col(summary, "unused")
    flag_sql = f"""
        INSERT INTO {quote(summary.db_table)} ({", ".join(columns)})
        SELECT unused_product.*, 0, 0, 0, 0, 0, 0, 0, NULL, %s, %s
        FROM ({unused_sql}) AS unused_product
        WHERE 1 = 1
        ON CONFLICT ({columns[0]}) DO UPDATE SET {unused} = excluded.{unused}
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            # Rows this run did not write: products without use in the window any more.
            ProductUsageSummary.objects.exclude(computed_at=now).delete()
            if connection.vendor == "postgresql":
                # Statistics of the rows just written (this transaction's own count): the
                # next statement's anti-join then probes them by primary key, where
                # statistics of an empty table would make it scan them per product.
                cursor.execute(f"ANALYZE {quote(summary.db_table)}")
            cursor.execute(flag_sql, [True, computed_at, *unused_params])
        products = ProductUsageSummary.objects.count()
        run = UsageSummaryRun.objects.create(
            computed_at=now,
            window_end=windows.end_day,
            window_days=DASHBOARD_WINDOW_DAYS,
            unused_days=unused_days,
            products=products,
            seconds=time.monotonic() - started,
        )
        UsageSummaryRun.objects.filter(computed_at__lt=now - timedelta(days=30)).delete()
    if connection.vendor == "postgresql":
        # Every row was rewritten: fresh statistics keep the dashboard's plans on the
        # indexes (autovacuum would get there, later).
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {quote(summary.db_table)}")
    return run
