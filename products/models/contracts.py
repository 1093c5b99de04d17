"""Data contracts (ODCS v3.1) of a product, version by version, and the support channels
a contract (or an owner) names."""

from django.conf import settings
from django.db import models

from products.choices import ContractStatus
from products.models.ports import DataSource
from products.models.products import DataProduct


class Contract(models.Model):
    """One version of a product's contract: the ODCS document as imported (validated
    against the ODCS JSON schema), a draft until an owner publishes it. Publishing applies
    it to the catalog (columns, checks, SLOs, description, support); the published
    version with the latest `published_at` is the product's current contract."""

    product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="contracts")
    version = models.CharField(max_length=60, help_text="Semantic version, e.g. 1.2.0.")
    status = models.CharField(
        max_length=12, choices=ContractStatus.choices, default=ContractStatus.DRAFT
    )
    document = models.JSONField(help_text="The ODCS document (YAML parsed to JSON).")
    # What the import could not map onto the catalog: [{"path": "$...", "message": "..."}].
    unmapped = models.JSONField(default=list, blank=True)
    # Where output ports the contract names but the product lacks are created.
    default_source = models.ForeignKey(
        DataSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Breaking changes against the version it replaced, recorded when published.
    breaking_changes = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["product", "-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "version"], name="contract_version_unique_in_product"
            )
        ]
        indexes = [
            models.Index(fields=["product", "status", "-published_at"], name="contract_current_idx")
        ]

    def __str__(self) -> str:
        return f"{self.product} contract {self.version}"

    @property
    def contract_id(self) -> str:
        return str((self.document or {}).get("id", ""))

    @property
    def is_published(self) -> bool:
        return self.status == ContractStatus.PUBLISHED


class SupportChannel(models.Model):
    """Where consumers get help with a product (ODCS/ODPS `support`): a Slack channel, a
    mailing list, a ticket queue."""

    product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="support_channels"
    )
    channel = models.CharField(max_length=200)
    url = models.CharField(max_length=500, blank=True, help_text="https:, http: or mailto:")
    tool = models.CharField(max_length=40, blank=True, help_text="email, slack, teams, ticket...")
    scope = models.CharField(
        max_length=40, blank=True, help_text="interactive, announcements, issues..."
    )
    description = models.CharField(max_length=500, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["product", "position", "pk"]

    def __str__(self) -> str:
        return self.channel
