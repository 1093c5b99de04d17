"""Retiring products: a proposal with a notice period, objections, and a log of every
step (flagged as unused, proposed, objected, withdrawn, deprecated, grants revoked, share
links revoked, export schedules ended, retired). The workflow is
products.retirement.services."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from products.choices import OPEN_RETIREMENT_STATUSES, RetirementEventKind, RetirementStatus
from products.models.products import DataProduct


class RetirementProposal(models.Model):
    product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="retirement_proposals"
    )
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField()
    notice_days = models.PositiveSmallIntegerField()
    proposed_at = models.DateTimeField()
    notice_ends_at = models.DateTimeField()
    status = models.CharField(
        max_length=12, choices=RetirementStatus.choices, default=RetirementStatus.PROPOSED
    )
    deprecated_at = models.DateTimeField(null=True, blank=True)
    # End of the grace period after deprecation: the product is retired then.
    retire_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    # Withdrawn: when, by whom, why.
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    close_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-proposed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["product"],
                condition=Q(status__in=list(OPEN_RETIREMENT_STATUSES)),
                name="one_open_retirement_per_product",
            )
        ]
        indexes = [
            models.Index(fields=["status", "notice_ends_at"], name="retirement_due_idx"),
            models.Index(fields=["product", "-proposed_at"], name="retirement_product_idx"),
        ]

    def __str__(self) -> str:
        return f"retirement of {self.product} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_RETIREMENT_STATUSES


class RetirementObjection(models.Model):
    proposal = models.ForeignKey(
        RetirementProposal, on_delete=models.CASCADE, related_name="objections"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.TextField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["proposal", "user"], name="one_retirement_objection_per_person"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} objects to {self.proposal}"


class RetirementEvent(models.Model):
    """One step of a product's retirement, in order. `recipients` are the ids of the
    people told about it (chosen when the step happened: a retirement tells the grantees
    it is about to revoke); `notified_at` is set once, when they are emailed."""

    product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="retirement_events"
    )
    proposal = models.ForeignKey(
        RetirementProposal,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
    )
    kind = models.CharField(max_length=24, choices=RetirementEventKind.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField()
    message = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    recipients = models.JSONField(default=list, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            models.Index(fields=["product", "kind", "-at"], name="retirement_event_product_idx")
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind} {self.product}"
