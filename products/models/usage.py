"""Page views of products. Data reads are not stored here: they are the audit's `read`
events (sharing.models.AccessEvent)."""

from django.conf import settings
from django.db import models

from products.models.products import DataProduct


class ProductPageView(models.Model):
    """How many times one person opened a product's page on one day (UTC).

    One row per (product, day, user), counted up by a single UPSERT per page view
    (products.usage.services.product_view_record), so the table grows with distinct
    daily viewers, not with page loads, and distinct viewers come from it directly."""

    product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="page_views")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    views = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            # Also the index of a product's daily series (product, day range).
            models.UniqueConstraint(
                fields=["product", "day", "user"], name="page_view_one_row_per_person_and_day"
            )
        ]
        # The portal-wide windows (usage dashboard) scan a range of days.
        indexes = [models.Index(fields=["day"], name="page_view_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.user_id} viewed {self.product_id} ({self.views}x)"


class ProductUsageSummary(models.Model):
    """A product's use over the last 30 days and the 30 before, its latest data read
    within the unused window (RETIREMENT_UNUSED_DAYS), and whether it is unused, as of
    `computed_at`: what the usage dashboard ranks and lists, so that it reads a few
    indexed rows instead of aggregating millions of audit events per request.

    Rewritten by products.usage.services.usage_summaries_refresh (a periodic task): one
    row per product with a read or a page view in the window, or unused; no row means
    no use and not unused (a draft, a new product)."""

    product = models.OneToOneField(
        DataProduct, on_delete=models.CASCADE, primary_key=True, related_name="usage_summary"
    )
    reads = models.PositiveIntegerField(default=0)
    reads_previous = models.PositiveIntegerField(default=0)
    readers = models.PositiveIntegerField(default=0)
    views = models.PositiveIntegerField(default=0)
    views_previous = models.PositiveIntegerField(default=0)
    # Stored so that indexes give the rankings: use = reads + views; growth = use minus
    # the previous window's reads + views.
    use = models.PositiveIntegerField(default=0)
    growth = models.IntegerField(default=0)
    last_read_at = models.DateTimeField(null=True, blank=True)
    # products.usage.selectors.products_unused's rule, at computed_at.
    unused = models.BooleanField(default=False)
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["-use", "product"], name="usage_summary_use_idx"),
            models.Index(fields=["-growth", "-use", "product"], name="usage_summary_growth_idx"),
            models.Index(
                fields=["product"], condition=models.Q(unused=True), name="usage_summary_unused_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"usage of {self.product_id}: {self.use} (as of {self.computed_at:%Y-%m-%d %H:%M})"

    @property
    def use_previous(self) -> int:
        return self.reads_previous + self.views_previous


class UsageSummaryRun(models.Model):
    """One refresh of the usage summaries: when, for which windows, how long it took."""

    computed_at = models.DateTimeField(db_index=True)
    window_end = models.DateField(help_text="The last (UTC) day counted.")
    window_days = models.PositiveSmallIntegerField()
    unused_days = models.PositiveSmallIntegerField()
    products = models.PositiveIntegerField(help_text="Products with use in the window.")
    seconds = models.FloatField()

    class Meta:
        ordering = ["-computed_at"]

    def __str__(self) -> str:
        return f"usage summaries of {self.computed_at:%Y-%m-%d %H:%M}"
