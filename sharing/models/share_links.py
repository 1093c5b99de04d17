"""Share links: a URL with a secret token that serves one product's data (or one export
run's file) to whoever holds it, within the creator's own access, until it expires, is
revoked or is used up."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from products.models import DataProduct, OutputPort
from sharing.choices import DataFormat


class ShareLink(models.Model):
    # Only the SHA-256 of the token is kept; the token itself is shown once.
    token_hash = models.CharField(max_length=64, unique=True)
    token_hint = models.CharField(max_length=8, help_text="The token's first characters.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_links"
    )
    product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="share_links")
    port = models.ForeignKey(
        OutputPort, null=True, blank=True, on_delete=models.CASCADE, related_name="share_links"
    )
    # Set when the link serves one export run's file rather than a live read.
    export_run = models.ForeignKey(
        "sharing.ExportRun",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="share_links",
    )
    columns = models.JSONField(default=list, blank=True)
    row_filter = models.JSONField(default=list, blank=True)
    format = models.CharField(max_length=8, choices=DataFormat.choices, default=DataFormat.CSV)
    neutralise_formulas = models.BooleanField(
        default=False,
        help_text="CSV only: put a ' in front of text cells starting with = + - @, a tab "
        "or a carriage return, so a spreadsheet opening the file shows them instead of "
        "running them as formulas. Off: values are written as they are.",
    )
    note = models.TextField(blank=True, help_text="Shown to the recipient.")
    expires_at = models.DateTimeField()
    max_downloads = models.PositiveIntegerField(null=True, blank=True)
    download_count = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # The database itself refuses a download beyond the limit.
            models.CheckConstraint(
                condition=Q(max_downloads__isnull=True) | Q(download_count__lte=F("max_downloads")),
                name="share_link_within_download_limit",
            )
        ]
        indexes = [models.Index(fields=["created_by", "-created_at"], name="share_link_owner_idx")]

    def __str__(self) -> str:
        return f"share link {self.token_hint}… to {self.product}"
