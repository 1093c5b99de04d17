"""Delta Sharing: a share groups products as tables (in schemas); recipients hold bearer
tokens (stored hashed) that read the share through the open Delta Sharing protocol, with
the access of the share's creator, checked at every query."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from products.models import DataProduct, OutputPort


class DeltaShare(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delta_shares"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeltaShareTable(models.Model):
    """One product (port) exposed as `<share>.<schema>.<name>`, optionally narrowed to
    some columns and rows."""

    share = models.ForeignKey(DeltaShare, on_delete=models.CASCADE, related_name="tables")
    schema = models.SlugField(max_length=100, default="default")
    name = models.SlugField(max_length=100)
    product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="delta_share_tables"
    )
    port = models.ForeignKey(
        OutputPort, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    columns = models.JSONField(default=list, blank=True)
    row_filter = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The table version recipients see: bumped when the fingerprint of what the table
    # serves changes (the source's data, the port's columns, the creator's access).
    version = models.PositiveBigIntegerField(default=0)
    version_fingerprint = models.CharField(max_length=64, blank=True)
    version_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["share_id", "schema", "name"]
        constraints = [
            models.UniqueConstraint(
                "share", Lower("schema"), Lower("name"), name="one_delta_table_per_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.share.name}.{self.schema}.{self.name}"


class DeltaRecipient(models.Model):
    share = models.ForeignKey(DeltaShare, on_delete=models.CASCADE, related_name="recipients")
    name = models.CharField(max_length=200)
    token_hash = models.CharField(max_length=64, unique=True)
    token_hint = models.CharField(max_length=8)
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} on {self.share}"
