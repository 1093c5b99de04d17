from django.conf import settings
from django.db import models

from products.choices import RunStatus
from products.models.ports import OutputPort


class SchemaRefreshRun(models.Model):
    """One reading of a port's columns from its source, run by a Celery worker."""

    port = models.ForeignKey(OutputPort, on_delete=models.CASCADE, related_name="refresh_runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    columns_added = models.JSONField(default=list, blank=True)
    columns_removed = models.JSONField(default=list, blank=True)
    columns_changed = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "started_at"], name="refresh_run_status_idx")]

    def __str__(self) -> str:
        return f"Schema refresh #{self.pk} of {self.port} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)
