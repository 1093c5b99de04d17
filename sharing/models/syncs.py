"""Reverse ETL: a sync sends a product port's rows (as its creator may read them) to an
operational system, a destination. Each run plans before it sends (added, changed and
removed keys against the last acknowledged state, a row hash per key), is held for an
owner's approval when a guardrail trips, and advances the state only for the records the
destination acknowledged.

Tables: SyncDestination (where), Sync (what, how, when, guardrails), SyncRun (one run:
its plan, counts, status), SyncRecordState (per sync and key: the hash the destination
acknowledged last), SyncPlannedChange (a held run's exact plan, sent on approval),
SyncRejectedRecord (the dead-letter list: records a destination refused, with its reason).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django_celery_beat.models import PeriodicTask


class DestinationKind(models.TextChoices):
    HTTP = "http", "HTTP API"
    POSTGRESQL = "postgresql", "PostgreSQL table"
    MYSQL = "mysql", "MySQL / MariaDB table"
    DUCKDB = "duckdb", "DuckDB table"
    NATS = "nats", "NATS JetStream subject"


class SyncMode(models.TextChoices):
    INSERT = "insert", "Insert new records"
    UPDATE = "update", "Update existing records"
    UPSERT = "upsert", "Insert or update"
    MIRROR = "mirror", "Mirror (also delete records this sync sent that left the source)"


class SyncTrigger(models.TextChoices):
    MANUAL = "manual", "Only when run by hand"
    SCHEDULE = "schedule", "On a schedule"
    AFTER_CHECKS = "after_checks", "After each passing check run"


class SyncStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


class SyncRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PLANNED = "planned", "Planned"  # a dry run's end, or a plan about to be sent
    RUNNING = "running", "Running"
    HELD = "held", "Held for approval"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"  # a held plan that was declined or superseded


class SyncRunTrigger(models.TextChoices):
    MANUAL = "manual", "Run by hand"
    SCHEDULE = "schedule", "Schedule"
    AFTER_CHECKS = "after_checks", "After a passing check run"
    APPROVAL = "approval", "Approved held plan"


class ChangeKind(models.TextChoices):
    ADDED = "added", "Added"
    CHANGED = "changed", "Changed"
    REMOVED = "removed", "Removed"


class SyncDestination(models.Model):
    """Where syncs write: one HTTP endpoint, one table or one NATS subject. Registered by
    an admin (no domain: every domain may use it) or by a domain's owners (that domain's
    syncs only). Secrets are never stored: `secret_env` names the environment variable
    that holds the password (tables) or the auth header's value (HTTP)."""

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=12, choices=DestinationKind.choices)
    description = models.TextField(blank=True)
    domain = models.ForeignKey(
        "products.Domain",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sync_destinations",
        help_text="The domain whose syncs may use it; empty: every domain (admins only).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    secret_env = models.CharField(
        "secret environment variable",
        max_length=120,
        blank=True,
        help_text="Name of the environment variable holding the password or auth header "
        "value; never the secret itself.",
    )
    # HTTP
    url = models.URLField(max_length=500, blank=True)
    auth_header = models.CharField(
        max_length=120, blank=True, help_text="e.g. Authorization; its value from secret_env."
    )
    batch_size = models.PositiveIntegerField(default=500)
    body_template = models.TextField(
        blank=True,
        help_text='JSON with "{{records}}" where the batch goes; empty: {"records": [...]}.',
    )
    rate_per_second = models.FloatField(
        null=True, blank=True, help_text="Requests per second at most (token bucket)."
    )
    # PostgreSQL, MySQL / MariaDB (host...), DuckDB (path)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    database = models.CharField(max_length=120, blank=True)
    username = models.CharField(max_length=120, blank=True)
    path = models.CharField(max_length=500, blank=True, help_text="DuckDB database file.")
    schema_name = models.CharField(max_length=120, blank=True)
    table_name = models.CharField(max_length=120, blank=True)
    # NATS JetStream (empty server: settings.NATS_URL)
    nats_url = models.CharField(max_length=300, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Sync(models.Model):
    """What to send (a port's columns, or a metric's values, as `created_by` may read
    them), by which key, to which destination fields, how (mode) and when, within which
    guardrails."""

    product = models.ForeignKey(
        "products.DataProduct", on_delete=models.CASCADE, related_name="syncs"
    )
    port = models.ForeignKey(
        "products.OutputPort", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # A metric's values instead of a port's rows (`port` is then the metric's port): the
    # metric evaluated as every channel evaluates it, grouped by `metric_query`'s
    # {"dimensions": [...], "grain": "month" or null, "filters": [...]}; its columns are
    # "period" (with a grain), the dimensions and "value".
    metric = models.ForeignKey(
        "products.Metric", null=True, blank=True, on_delete=models.CASCADE, related_name="syncs"
    )
    metric_query = models.JSONField(default=dict, blank=True)
    name = models.CharField(max_length=200)
    destination = models.ForeignKey(SyncDestination, on_delete=models.PROTECT, related_name="syncs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="syncs"
    )
    columns = models.JSONField(default=list, help_text="Source columns sent.")
    key_columns = models.JSONField(default=list, help_text="The primary key, one or more.")
    # source column -> destination field; a column not named keeps its own name
    mapping = models.JSONField(default=dict, blank=True)
    mode = models.CharField(max_length=8, choices=SyncMode.choices, default=SyncMode.UPSERT)
    trigger = models.CharField(
        max_length=14, choices=SyncTrigger.choices, default=SyncTrigger.MANUAL
    )
    cron = models.CharField(max_length=100, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    periodic_task = models.OneToOneField(
        PeriodicTask, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Guardrails (percentages of the records the destination holds from this sync)
    max_changed_pct = models.FloatField(default=20.0)
    max_removed_pct = models.FloatField(default=5.0)
    hold_on_empty_source = models.BooleanField(default=True)
    max_count_move_pct = models.FloatField(
        default=50.0, help_text="Vs the median source row count of the last 5 runs."
    )
    # [{"column": "bid", "max_change_pct": 10.0, "max_sum": 100000.0}, ...] (either limit
    # may be null)
    column_limits = models.JSONField(default=list, blank=True)
    breaker_failures = models.PositiveIntegerField(
        default=3, help_text="Pause after this many failed runs in a row."
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    # A loop: the destination table is the relation of a port whose product feeds this
    # sync. Found at save; a sync with a loop must have column limits before it may run.
    loop_warning = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=SyncStatus.choices, default=SyncStatus.ACTIVE)
    paused_reason = models.CharField(max_length=300, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product_id", "name", "pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.product})"


class SyncRun(models.Model):
    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(
        max_length=14, choices=SyncRunTrigger.choices, default=SyncRunTrigger.MANUAL
    )
    dry_run = models.BooleanField(default=False)
    status = models.CharField(
        max_length=10, choices=SyncRunStatus.choices, default=SyncRunStatus.QUEUED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The held run this one sends (trigger=approval), and who approved it.
    approves = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="approved_by_run"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # [{"guardrail": "max_changed_pct", "message": "...", "records": [...]}, ...]
    held_reasons = models.JSONField(default=list, blank=True)
    # counts
    source_rows = models.BigIntegerField(null=True, blank=True)
    planned = models.BigIntegerField(default=0)
    added = models.BigIntegerField(default=0)
    changed = models.BigIntegerField(default=0)
    removed = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)
    skipped = models.BigIntegerField(default=0)
    # {"added": [record...], "changed": [{"key":..., "before":..., "after":...}], "removed": [...]}
    plan_sample = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)  # for people
    detail = models.JSONField(default=dict, blank=True)  # timings, technical error

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["sync", "-created_at"], name="sync_run_sync_idx"),
            models.Index(fields=["status", "started_at"], name="sync_run_status_idx"),
        ]

    def __str__(self) -> str:
        return f"sync run {self.pk} of {self.sync} ({self.status})"


class SyncRecordState(models.Model):
    """Per sync and key: the row hash the destination acknowledged last (what the next
    plan diffs against; mirror deletes only keys found here)."""

    # A million keys are written per run of a large sync: no foreign-key checks per row and
    # one index, the key (sync, key) the plan reads by, which serves sync lookups too.
    # Django still deletes a sync's states with it; a run is deleted only with its sync.
    pk = models.CompositePrimaryKey("sync", "key")
    sync = models.ForeignKey(
        Sync,
        on_delete=models.CASCADE,
        related_name="record_states",
        db_constraint=False,
        db_index=False,
    )
    key = models.TextField()  # the key's values, canonical JSON text
    row_hash = models.CharField(max_length=64)
    # the numbers last sent for columns with limits, {"bid": 12.5}, for per-record limits
    # (None: the sync had no column limits when the record was sent)
    limited_values = models.JSONField(null=True, blank=True)
    run = models.ForeignKey(
        SyncRun,
        null=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    acked_at = models.DateTimeField(db_default=Now())  # the acknowledging transaction's

    def __str__(self) -> str:
        return f"{self.sync_id} {self.key}"


class SyncPlannedChange(models.Model):
    """One record of a held run's plan, kept so that approving sends exactly it."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="planned_changes")
    kind = models.CharField(max_length=8, choices=ChangeKind.choices)
    key = models.TextField()
    row_hash = models.CharField(max_length=64, blank=True)
    record = models.JSONField(default=dict, blank=True)  # destination field -> value

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["run", "kind"], name="sync_planned_run_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class SyncRejectedRecord(models.Model):
    """A record the destination refused, with its reason: retried at the next run."""

    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="rejected_records")
    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="rejected_records")
    kind = models.CharField(max_length=8, choices=ChangeKind.choices)
    key = models.TextField()
    record = models.JSONField(default=dict, blank=True)
    reason = models.TextField()
    rejected_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)  # sent later, or superseded

    class Meta:
        ordering = ["-rejected_at", "-pk"]
        indexes = [
            models.Index(
                fields=["sync", "key"],
                condition=Q(resolved_at__isnull=True),
                name="sync_rejected_open_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.reason[:60]}"
