"""Shapes of the syncs API. Output serializers turn destinations, syncs, runs and rejected
records into JSON; input serializers only parse a body, and the view hands the values to
sharing.syncs services, which hold the rules (each bad field named, 400)."""

from rest_framework import serializers
from rest_framework.reverse import reverse

from products.catalog.api.serializers import InputSerializer, enum_field
from sharing.models.syncs import (
    DestinationKind,
    Sync,
    SyncDestination,
    SyncMode,
    SyncRejectedRecord,
    SyncRun,
    SyncRunStatus,
    SyncRunTrigger,
    SyncStatus,
    SyncTrigger,
)
from sharing.syncs.charts import run_duration, run_records_per_second
from sharing.syncs.services.destinations import DESTINATION_FIELDS

DestinationKindField = enum_field(DestinationKind)
SyncModeField = enum_field(SyncMode)
SyncTriggerField = enum_field(SyncTrigger)
SyncStatusField = enum_field(SyncStatus)
SyncRunStatusField = enum_field(SyncRunStatus)
SyncRunTriggerField = enum_field(SyncRunTrigger)

GUARDRAIL_FIELDS = (
    "max_changed_pct",
    "max_removed_pct",
    "hold_on_empty_source",
    "max_count_move_pct",
    "column_limits",
    "breaker_failures",
)
CRON_HELP = (
    "Five fields: minute hour day-of-month month day-of-week, e.g. `0 6 * * 1-5`, in the "
    "sync's time zone (trigger `schedule` only)."
)
GUARDRAILS_HELP = (
    "Any of: `max_changed_pct` (default 20), `max_removed_pct` (5), `hold_on_empty_source` "
    "(true), `max_count_move_pct` (50, vs the median of the last 5 runs), `breaker_failures` "
    '(3), `column_limits` ([{"column": "bid", "max_change_pct": 10, "max_sum": 100000}]). '
    "A run that trips one is held for approval."
)


class _Username(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(slug_field="username", read_only=True, **kwargs)


# --- destinations ----------------------------------------------------------------------


class SyncDestinationSerializer(serializers.ModelSerializer):
    kind = DestinationKindField(read_only=True)
    domain = serializers.CharField(source="domain.slug", read_only=True, allow_null=True)
    created_by = _Username(allow_null=True)
    url = serializers.CharField(read_only=True, help_text="HTTP: where batches are POSTed.")

    class Meta:
        model = SyncDestination
        fields = ["id", *DESTINATION_FIELDS, "domain", "created_by", "created_at"]
        read_only_fields = fields


class SyncDestinationInputSerializer(InputSerializer):
    """Register (name and kind required) or change a destination. Secrets never travel
    here: `secret_env` names the environment variable holding one."""

    name = serializers.CharField(max_length=120)
    kind = serializers.ChoiceField(choices=DestinationKind.choices)
    description = serializers.CharField(required=False, allow_blank=True)
    domain = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="The slug of the domain whose syncs may use it; empty: every domain "
        "(admins only).",
    )
    secret_env = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="The NAME of the environment variable holding the password or auth "
        "header value (e.g. CRM_TOKEN); never the secret itself.",
    )
    url = serializers.CharField(required=False, allow_blank=True)
    auth_header = serializers.CharField(required=False, allow_blank=True)
    batch_size = serializers.IntegerField(required=False)
    body_template = serializers.CharField(required=False, allow_blank=True)
    rate_per_second = serializers.FloatField(required=False, allow_null=True)
    host = serializers.CharField(required=False, allow_blank=True)
    port = serializers.IntegerField(required=False, allow_null=True)
    database = serializers.CharField(required=False, allow_blank=True)
    username = serializers.CharField(required=False, allow_blank=True)
    path = serializers.CharField(required=False, allow_blank=True)
    schema_name = serializers.CharField(required=False, allow_blank=True)
    table_name = serializers.CharField(required=False, allow_blank=True)
    nats_url = serializers.CharField(required=False, allow_blank=True)
    subject = serializers.CharField(required=False, allow_blank=True)


# --- syncs -----------------------------------------------------------------------------


class SyncSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.key", read_only=True)
    port = serializers.CharField(source="port.slug", read_only=True, allow_null=True)
    metric = serializers.CharField(
        source="metric.key",
        read_only=True,
        allow_null=True,
        help_text="The metric whose values the sync sends (null: the port's rows).",
    )
    destination = serializers.PrimaryKeyRelatedField(read_only=True)
    destination_name = serializers.CharField(source="destination.name", read_only=True)
    created_by = _Username()
    mode = SyncModeField(read_only=True)
    trigger = SyncTriggerField(read_only=True)
    status = SyncStatusField(read_only=True)
    guardrails = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    runs_url = serializers.SerializerMethodField()

    class Meta:
        model = Sync
        fields = [
            "id",
            "url",
            "product",
            "port",
            "metric",
            "metric_query",
            "name",
            "destination",
            "destination_name",
            "created_by",
            "columns",
            "key_columns",
            "mapping",
            "mode",
            "trigger",
            "cron",
            "timezone",
            "guardrails",
            "loop_warning",
            "status",
            "paused_reason",
            "paused_at",
            "consecutive_failures",
            "created_at",
            "updated_at",
            "runs_url",
        ]
        read_only_fields = fields

    def get_guardrails(self, sync) -> dict:
        return {name: getattr(sync, name) for name in GUARDRAIL_FIELDS}

    def get_url(self, sync) -> str:
        return reverse("sync-detail", kwargs={"pk": sync.pk}, request=self.context.get("request"))

    def get_runs_url(self, sync) -> str:
        return reverse("sync-runs", kwargs={"pk": sync.pk}, request=self.context.get("request"))


class GuardrailsInputSerializer(InputSerializer):
    max_changed_pct = serializers.FloatField(required=False)
    max_removed_pct = serializers.FloatField(required=False)
    hold_on_empty_source = serializers.BooleanField(required=False)
    max_count_move_pct = serializers.FloatField(required=False)
    column_limits = serializers.ListField(child=serializers.DictField(), required=False)
    breaker_failures = serializers.IntegerField(required=False)


class SyncInputSerializer(InputSerializer):
    """Create (product, destination, name, columns and key_columns required) or change
    (any of the others) a sync."""

    product = serializers.CharField(help_text="The product's key, e.g. `sales.orders`.")
    port = serializers.CharField(
        required=False, help_text="An output port's slug (default: the product's first port)."
    )
    metric = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Send the values of this product's metric (its key, e.g. `sales.revenue`) "
        "instead of a port's rows; empty: a port's rows.",
    )
    metric_query = serializers.DictField(
        required=False,
        help_text='How the metric is grouped: `{"dimensions": ["country"], "grain": "month", '
        '"filters": [...]}`. Its columns are `period` (with a grain), the dimensions and '
        "`value`; columns and key_columns may be left out (all of them, keyed by period and "
        "dimensions).",
    )
    destination = serializers.IntegerField(help_text="A destination's id you may use.")
    name = serializers.CharField(max_length=200)
    columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False),
        required=False,
        help_text="The columns sent (a port sync names them).",
    )
    key_columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False),
        required=False,
        help_text="The primary key (a port sync names it).",
    )
    mapping = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Source column -> destination field; a column not named keeps its name.",
    )
    mode = serializers.ChoiceField(choices=SyncMode.choices, required=False)
    trigger = serializers.ChoiceField(choices=SyncTrigger.choices, required=False)
    cron = serializers.CharField(required=False, allow_blank=True, help_text=CRON_HELP)
    timezone = serializers.CharField(
        required=False, help_text="An IANA time zone name (default UTC)."
    )
    guardrails = GuardrailsInputSerializer(required=False, help_text=GUARDRAILS_HELP)


class SyncUpdateSerializer(SyncInputSerializer):
    """A change: any field but the product."""

    def get_fields(self):
        fields = super().get_fields()
        fields.pop("product")
        return fields


class SyncRunSerializer(serializers.ModelSerializer):
    sync = serializers.PrimaryKeyRelatedField(read_only=True)
    trigger = SyncRunTriggerField(read_only=True)
    status = SyncRunStatusField(read_only=True)
    requested_by = _Username(allow_null=True)
    approved_by = _Username(allow_null=True)
    approves = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    duration = serializers.SerializerMethodField(help_text="Seconds from start to end.")
    records_per_second = serializers.SerializerMethodField(
        help_text="Records sent (added + changed + removed) per second of the run."
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "url",
            "sync",
            "trigger",
            "dry_run",
            "status",
            "requested_by",
            "approves",
            "approved_by",
            "approved_at",
            "source_rows",
            "planned",
            "added",
            "changed",
            "removed",
            "rejected",
            "skipped",
            "duration",
            "records_per_second",
            "held_reasons",
            "plan_sample",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_duration(self, run) -> float | None:
        return run_duration(run)

    def get_records_per_second(self, run) -> float | None:
        return run_records_per_second(run)

    def get_url(self, run) -> str:
        return reverse(
            "sync-run-detail",
            kwargs={"pk": run.sync_id, "run_id": run.pk},
            request=self.context.get("request"),
        )


class SyncRejectedRecordSerializer(serializers.ModelSerializer):
    run = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = SyncRejectedRecord
        fields = ["id", "run", "kind", "key", "record", "reason", "rejected_at", "resolved_at"]
        read_only_fields = fields


class ReasonInputSerializer(InputSerializer):
    """Why a sync is paused or a held run declined (optional)."""

    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)
