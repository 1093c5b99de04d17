"""Federated SQL queries: each one run (or refused) is kept, for the reader's history,
the query id of its audit events, and cancelling it."""

import uuid

from django.conf import settings
from django.db import models

from sharing.choices import QueryStatus


class FederatedQuery(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="federated_queries"
    )
    sql = models.TextField()
    status = models.CharField(
        max_length=16, choices=QueryStatus.choices, default=QueryStatus.RUNNING
    )
    # Where it ran: "postgresql" or "duckdb" (pushed down whole to one source), or
    # "federated" (joined in the portal's DuckDB).
    engine = models.CharField(max_length=16, blank=True)
    products = models.JSONField(default=list, blank=True)  # keys, as written
    channel = models.CharField(max_length=16, default="api")  # api | web | notebook | wire
    rows = models.BigIntegerField(null=True, blank=True)
    truncated = models.BooleanField(default=False)
    error = models.TextField(blank=True)  # what the reader was told
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["user", "-started_at"])]

    def __str__(self) -> str:
        return f"query {self.id} by {self.user_id}"


class SavedQuery(models.Model):
    """A query kept under a name; shared ones are listed for everyone, and run with the
    reader's own access (a shared query never widens it)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_queries"
    )
    name = models.CharField(max_length=200)
    sql = models.TextField()
    description = models.TextField(blank=True)
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="saved_query_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name
