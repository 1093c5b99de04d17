"""Scheduled exports: a schedule writes a product's rows to a file on a cron; each firing
(or "run now") is an export run with its file, size, checksum and outcome."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_celery_beat.models import PeriodicTask

from products.models import DataProduct, OutputPort
from sharing.choices import DataFormat, ExportStatus, ExportTrigger


class ExportSchedule(models.Model):
    """What to export (product, port, columns, rows, masking, format), when (cron in a
    timezone) and how long to keep it (the last N runs' files). Reads run with the access
    of `created_by`, checked at every run."""

    product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="export_schedules"
    )
    port = models.ForeignKey(
        OutputPort, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_schedules"
    )
    columns = models.JSONField(default=list, blank=True)
    row_filter = models.JSONField(default=list, blank=True)
    masked_columns = models.JSONField(
        default=list,
        blank=True,
        help_text="Columns written masked in addition to any the reader's access masks.",
    )
    format = models.CharField(max_length=8, choices=DataFormat.choices, default=DataFormat.CSV)
    neutralise_formulas = models.BooleanField(
        default=False,
        help_text="CSV only: put a ' in front of text cells starting with = + - @, a tab "
        "or a carriage return, so a spreadsheet opening the file shows them instead of "
        "running them as formulas. Off: values are written as they are.",
    )
    cron = models.CharField(max_length=100)
    timezone = models.CharField(max_length=64, default="UTC")
    retention_runs = models.PositiveIntegerField(default=7)
    quality_gate = models.BooleanField(
        default=False,
        help_text="Run the product's checks first; hold the export when an error-severity "
        "check fails.",
    )
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        PeriodicTask, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["product_id", "name", "pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.product})"


class ExportRun(models.Model):
    schedule = models.ForeignKey(ExportSchedule, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(
        max_length=12, choices=ExportTrigger.choices, default=ExportTrigger.SCHEDULE
    )
    # The cron slot this run is for ("" for run-now): one run per slot.
    slot = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=12, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    file_name = models.CharField(max_length=500, blank=True, help_text="Path in file storage.")
    rows = models.BigIntegerField(null=True, blank=True)
    bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    pruned_at = models.DateTimeField(null=True, blank=True, help_text="File removed.")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "slot"], condition=~Q(slot=""), name="one_export_run_per_slot"
            )
        ]
        indexes = [
            models.Index(fields=["schedule", "-created_at"], name="export_run_schedule_idx"),
            models.Index(fields=["status", "started_at"], name="export_run_status_idx"),
        ]

    def __str__(self) -> str:
        return f"export run {self.pk} of {self.schedule} ({self.status})"
