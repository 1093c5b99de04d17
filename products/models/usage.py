"""Page views of products. Data reads are not stored here: they are the audit's `read`
events (sharing.models.AccessEvent)."""

from django.conf import settings
from django.db import models

from products.models.products import DataProduct


class ProductPageView(models.Model):
    """How many times one person opened a product's page on one day (UTC).

    One row per (product, day, user), counted up by a single UPSERT per page view
    (products.services.usage.product_view_record), so the table grows with distinct
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
