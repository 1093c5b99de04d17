"""Access requests and grants, and the audit of every read and every access decision."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q

from products.models import DataProduct
from sharing.choices import AuditAction, Channel, RequestStatus


class AccessRequest(models.Model):
    """Someone asks to read a product: why, which columns (empty: all), for how long."""

    product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="access_requests"
    )
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_requests"
    )
    purpose = models.TextField()
    columns = models.JSONField(default=list, blank=True)
    duration_days = models.PositiveIntegerField()
    status = models.CharField(
        max_length=12, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "requester"],
                condition=Q(status="pending"),
                name="one_pending_request_per_product_and_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.requester} asks for {self.product} ({self.status})"


class AccessGrant(models.Model):
    """Read access to a product for a user or a group (a team): which columns (empty:
    all), which rows (a structured filter), until when. Read-only, always."""

    product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_grants",
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="access_grants"
    )
    columns = models.JSONField(default=list, blank=True)
    # [{"column": "country", "op": "=", "value": "BE"}, ...], all must hold.
    row_filter = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField()
    reason = models.TextField(blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    request = models.OneToOneField(
        AccessRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="grant"
    )
    shareable = models.BooleanField(
        default=False, help_text="The grantee may create share links within this grant."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expiry_notified_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(group__isnull=True))
                | (Q(user__isnull=True) & Q(group__isnull=False)),
                name="grant_has_one_principal",
            )
        ]
        indexes = [
            models.Index(fields=["product", "user"], name="grant_product_user_idx"),
            models.Index(fields=["expires_at"], name="grant_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.principal_label} reads {self.product}"

    @property
    def principal_label(self) -> str:
        return self.user.username if self.user_id else f"team {self.group.name}"


class AccessEvent(models.Model):
    """The audit: one row per read served (any channel) and per access decision taken."""

    at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    product = models.ForeignKey(
        DataProduct, null=True, blank=True, on_delete=models.SET_NULL, related_name="access_events"
    )
    product_key = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, blank=True)
    columns = models.JSONField(default=list, blank=True)
    row_filter = models.JSONField(default=list, blank=True)
    rows = models.BigIntegerField(null=True, blank=True)
    bytes = models.BigIntegerField(null=True, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    grant = models.ForeignKey(
        AccessGrant, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    request = models.ForeignKey(
        AccessRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["product", "-at"], name="event_product_time_idx"),
            models.Index(fields=["user", "-at"], name="event_user_time_idx"),
            models.Index(fields=["action", "-at"], name="event_action_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.user} {self.action} {self.product_key}"
