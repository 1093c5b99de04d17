"""Trust: checks and their runs, port observations (monitors), SLOs, incidents and trust
score snapshots."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from products.choices import (
    UNRESOLVED_INCIDENT_STATUSES,
    CheckKind,
    CheckOutcome,
    CheckRunStatus,
    CheckTrigger,
    IncidentCause,
    IncidentEventKind,
    IncidentStatus,
    Severity,
    SLOKind,
)
from products.models.ports import OutputPort
from products.models.products import DataProduct


class Check(models.Model):
    """A validation rule on an output port, evaluated by pushing SQL down to the source.

    `params` by kind: accepted_values {"values": [...]}, range {"min": x, "max": y} (either
    may be absent), pattern {"regex": "..."}, row_count {"min": n, "max": m}, freshness
    {"max_age_hours": h}, volume_change {"max_change_percent": p, "window": n},
    custom_sql {"sql": "SELECT count(*) FROM {table} WHERE ..."}."""

    port = models.ForeignKey(OutputPort, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=CheckKind.choices)
    column = models.CharField(max_length=255, blank=True)
    params = models.JSONField(default=dict, blank=True)
    tolerance_percent = models.FloatField(
        default=0.0, help_text="Share of failing rows allowed, in percent (0 to 100)."
    )
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.ERROR)
    schedule = models.CharField(
        max_length=120, blank=True, help_text="Cron (5 fields); blank: the product's default."
    )
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["port", "name"]
        constraints = [
            models.UniqueConstraint(fields=["port", "name"], name="check_name_unique_in_port")
        ]

    def __str__(self) -> str:
        return self.name


class CheckRun(models.Model):
    """One evaluation of (some of) a port's checks, executed by a Celery worker."""

    port = models.ForeignKey(OutputPort, on_delete=models.CASCADE, related_name="check_runs")
    status = models.CharField(
        max_length=8, choices=CheckRunStatus.choices, default=CheckRunStatus.QUEUED
    )
    trigger = models.CharField(
        max_length=10, choices=CheckTrigger.choices, default=CheckTrigger.MANUAL
    )
    # The checks this run evaluates (ids); empty means every enabled check of the port.
    check_ids = models.JSONField(default=list, blank=True)
    # A scheduled run's slot ("<cron>@<iso time>"): one run per slot even if delivered twice.
    slot = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    row_count = models.BigIntegerField(null=True, blank=True)
    statements = models.PositiveIntegerField(default=0, help_text="SQL statements run.")
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errored = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["port", "-created_at"], name="check_run_port_idx"),
            models.Index(fields=["status", "started_at"], name="check_run_status_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["port", "slot"], condition=~Q(slot=""), name="one_check_run_per_slot"
            )
        ]

    def __str__(self) -> str:
        return f"Check run #{self.pk} of {self.port} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (CheckRunStatus.DONE, CheckRunStatus.ERROR)


class CheckResult(models.Model):
    """What one check observed in one run."""

    run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="results")
    # Not `check`: that name is Model.check(), Django's system-check hook.
    quality_check = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="results")
    port = models.ForeignKey(OutputPort, on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=8, choices=CheckOutcome.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    observed_value = models.FloatField(null=True, blank=True)
    failing_rows = models.BigIntegerField(null=True, blank=True)
    row_count = models.BigIntegerField(null=True, blank=True)
    failing_percent = models.FloatField(null=True, blank=True)
    threshold = models.CharField(max_length=300, blank=True, help_text="The tolerance, in words.")
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    # Up to 20 failing rows (row-level checks); shown only to people who may read rows.
    sample = models.JSONField(default=list, blank=True)
    evaluated_at = models.DateTimeField()

    class Meta:
        ordering = ["run", "quality_check__name"]
        indexes = [
            models.Index(fields=["quality_check", "-evaluated_at"], name="check_result_check_idx"),
            models.Index(fields=["port", "evaluated_at"], name="check_result_port_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.quality_check} {self.outcome}"


class PortObservation(models.Model):
    """What a monitor saw of a port at one moment: reachable, rows, newest timestamp.

    Written by the availability/freshness/volume monitors and by every check run."""

    port = models.ForeignKey(OutputPort, on_delete=models.CASCADE, related_name="observations")
    observed_at = models.DateTimeField()
    available = models.BooleanField()
    error = models.TextField(blank=True)
    row_count = models.BigIntegerField(null=True, blank=True)
    newest_at = models.DateTimeField(null=True, blank=True)
    freshness_lag_seconds = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=16, default="monitor")  # monitor | check_run
    # Stream ports only (products.trust.services.monitors; docs/streams.md "Monitors").
    # The stream's last sequence when observed: the next observation reads after it.
    stream_last_seq = models.BigIntegerField(null=True, blank=True)
    # Messages that arrived on the subject since the previous observation, per minute.
    messages_per_minute = models.FloatField(null=True, blank=True)
    # The durable consumer furthest behind: its pending + unacknowledged messages.
    consumer_lag = models.BigIntegerField(null=True, blank=True)
    consumer_lag_name = models.CharField(max_length=255, blank=True)
    # The new messages checked against the port's schema (at most the newest
    # STREAM_MONITOR_VALIDATE_MESSAGES), how many did not match, the estimated rate of
    # invalid messages per minute, and why one did not (a column and a reason, no value).
    validated_messages = models.IntegerField(null=True, blank=True)
    invalid_messages = models.IntegerField(null=True, blank=True)
    invalid_per_minute = models.FloatField(null=True, blank=True)
    invalid_example = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-observed_at"]
        indexes = [models.Index(fields=["port", "observed_at"], name="observation_port_time_idx")]

    def __str__(self) -> str:
        return f"{self.port} at {self.observed_at:%Y-%m-%d %H:%M}"


class ServiceLevelObjective(models.Model):
    """A promise measured over rolling windows: freshness (data at most `threshold_hours`
    old in `target_percent` of observations), availability (`target_percent` of probes
    succeed), quality (`target_percent` of check evaluations pass); on stream ports,
    consumer lag (the furthest durable consumer at most `value` messages behind) and
    invalid messages (at most `value` per minute), each in `target_percent` of the
    observations that measured it."""

    product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="slos")
    kind = models.CharField(max_length=24, choices=SLOKind.choices)
    target_percent = models.FloatField()
    threshold_hours = models.FloatField(null=True, blank=True)
    description = models.CharField(max_length=300, blank=True)
    # As a contract wrote it (ODCS slaProperties value and unit), e.g. "4" "d" for a
    # latency, "3" "y" for a retention, "09:00-08:00" for a time of availability.
    value = models.CharField(max_length=100, blank=True)
    unit = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product", "kind"]
        constraints = [models.UniqueConstraint(fields=["product", "kind"], name="one_slo_per_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} SLO of {self.product}"


class Incident(models.Model):
    """Something broke. One unresolved incident per cause (`cause_key`), however many runs
    see it; recovery resolves it."""

    product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="incidents")
    port = models.ForeignKey(
        OutputPort, null=True, blank=True, on_delete=models.CASCADE, related_name="incidents"
    )
    cause = models.CharField(max_length=16, choices=IncidentCause.choices)
    # "check:<id>", "availability:<port id>", "slo:<id>", "sync:<id>"
    cause_key = models.CharField(max_length=120)
    title = models.CharField(max_length=300)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.ERROR)
    status = models.CharField(
        max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.OPEN
    )
    opened_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)
    # The technical reason (a source's address, the driver's error): shown to the domain's
    # members and admins only; titles and event bodies are written for every reader.
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["cause_key"],
                condition=Q(status__in=UNRESOLVED_INCIDENT_STATUSES),
                name="one_unresolved_incident_per_cause",
            )
        ]
        indexes = [models.Index(fields=["product", "status"], name="incident_product_status_idx")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_resolved(self) -> bool:
        return self.status == IncidentStatus.RESOLVED


class IncidentEvent(models.Model):
    """The incident's timeline: opened, acknowledged, comments, resolved. State changes
    are notified once (`notified_at`)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=IncidentEventKind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.incident} {self.kind}"


class TrustScore(models.Model):
    """A snapshot of a product's trust score (0 to 100) and the evidence behind each
    component (see docs/trust-score.md)."""

    product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="trust_scores")
    computed_at = models.DateTimeField()
    score = models.FloatField()
    quality = models.FloatField()
    reliability = models.FloatField()
    documentation = models.FloatField()
    support = models.FloatField()
    evidence = models.JSONField(default=dict)

    class Meta:
        ordering = ["-computed_at", "-pk"]
        indexes = [models.Index(fields=["product", "-computed_at"], name="trust_product_time_idx")]

    def __str__(self) -> str:
        return f"{self.product}: {self.score:.0f} at {self.computed_at:%Y-%m-%d %H:%M}"
