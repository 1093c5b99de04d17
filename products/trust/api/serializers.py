"""Shapes of the trust API: checks, check runs and their results, incidents, SLOs and
the trust score. Like products.catalog.api.serializers: output serializers shape models, input
serializers only parse a body for a service, which holds the rules.

Failing-row samples are data, not metadata: a result's `sample` is filled only for people
who may read the product's rows (`can_read_rows`, passed in the context), and null for
everyone else. A run's `error` names hosts: editors read it, others a summary.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.core.cron import cron_next_runs
from portal.core.links import api_url
from products.catalog.api.serializers import InputSerializer, enum_field
from products.choices import (
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
from products.models import (
    Check,
    CheckResult,
    CheckRun,
    Incident,
    IncidentEvent,
    ServiceLevelObjective,
)
from products.trust.services.check_details import (
    FIGURE_FIELDS,
    FIGURES_FOR_MEMBERS,
    MEMBER_MESSAGE,
    MEMBER_ONLY_DETAILS,
)
from products.trust.services.checks import check_effective_schedule
from products.trust.services.incidents import incident_detail_for

CheckKindField = enum_field(CheckKind)
CheckOutcomeField = enum_field(CheckOutcome)
CheckRunStatusField = enum_field(CheckRunStatus)
CheckTriggerField = enum_field(CheckTrigger)
IncidentCauseField = enum_field(IncidentCause)
IncidentEventKindField = enum_field(IncidentEventKind)
IncidentStatusField = enum_field(IncidentStatus)
SeverityField = enum_field(Severity)
SLOKindField = enum_field(SLOKind)

RUN_ERROR_HIDDEN = "The run failed. The product's owners and stewards can see why."


def next_runs_of(schedule: str, count: int = 3) -> list:
    """The next fire times of a cron expression; none when it never fires soon."""
    try:
        return cron_next_runs(schedule, count=count)
    except ValueError:
        return []


# --- check results ---------------------------------------------------------------------


class CheckResultSerializer(serializers.ModelSerializer):
    """What one check observed in one run. `sample`: up to 20 failing rows, only for
    people who may read the product's rows; null otherwise."""

    check_id = serializers.IntegerField(source="quality_check_id", read_only=True)
    check_name = serializers.CharField(source="quality_check.name", read_only=True)
    kind = CheckKindField(source="quality_check.kind", read_only=True)
    column = serializers.CharField(source="quality_check.column", read_only=True)
    outcome = CheckOutcomeField(read_only=True)
    severity = SeverityField(read_only=True)
    threshold = serializers.CharField(read_only=True, help_text="The tolerance, in words.")
    run_id = serializers.IntegerField(read_only=True)
    sample = serializers.SerializerMethodField(
        help_text="Failing rows (at most 20) for people who may read rows; null otherwise."
    )
    details = serializers.SerializerMethodField()

    class Meta:
        model = CheckResult
        fields = [
            "check_id",
            "check_name",
            "kind",
            "column",
            "run_id",
            "outcome",
            "severity",
            "observed_value",
            "threshold",
            "message",
            "failing_rows",
            "row_count",
            "failing_percent",
            "details",
            "sample",
            "evaluated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(
        serializers.ListField(child=serializers.DictField(), allow_null=True, read_only=True)
    )
    def get_sample(self, result: CheckResult) -> list | None:
        if not self.context.get("can_read_rows"):
            return None
        return result.sample

    @extend_schema_field(serializers.DictField(read_only=True))
    def get_details(self, result: CheckResult) -> dict:
        details = dict(result.details or {})
        if not self.context.get("can_read_rows"):
            # A sampling error or a driver's error may quote the rows it failed on.
            for key in ("sample_error", *MEMBER_ONLY_DETAILS):
                details.pop(key, None)
        return details

    def to_representation(self, result: CheckResult) -> dict:
        data = super().to_representation(result)
        details = result.details or {}
        if self.context.get("can_read_rows"):
            data["message"] = details.get(MEMBER_MESSAGE) or data.get("message")
        elif details.get(FIGURES_FOR_MEMBERS):
            # A custom check on confidential columns: its figures are theirs to read.
            for name in FIGURE_FIELDS:
                if name in data:
                    data[name] = None
        return data


class LatestResultSerializer(CheckResultSerializer):
    """A check's latest result as the check list shows it: no sample (see the run)."""

    class Meta(CheckResultSerializer.Meta):
        fields = [f for f in CheckResultSerializer.Meta.fields if f not in ("sample", "kind")]
        read_only_fields = fields


# --- checks ----------------------------------------------------------------------------


class CheckSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    port = serializers.CharField(source="port.slug", read_only=True)
    kind = CheckKindField(read_only=True)
    severity = SeverityField(read_only=True)
    schedule = serializers.CharField(
        read_only=True, help_text="Cron (5 fields, UTC); blank: the product's default."
    )
    effective_schedule = serializers.SerializerMethodField(
        help_text="The cron the check runs on: its own, or the product's default."
    )
    next_runs = serializers.SerializerMethodField(help_text="The next three scheduled runs.")
    latest_result = serializers.SerializerMethodField()

    class Meta:
        model = Check
        fields = [
            "id",
            "url",
            "port",
            "name",
            "kind",
            "column",
            "params",
            "tolerance_percent",
            "severity",
            "schedule",
            "effective_schedule",
            "next_runs",
            "enabled",
            "latest_result",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_url(self, check: Check) -> str:
        return api_url(
            self.context.get("request"),
            "products-api:product-check-detail",
            product_key=check.port.product.key,
            pk=check.pk,
        )

    def get_effective_schedule(self, check: Check) -> str:
        return check_effective_schedule(check)

    @extend_schema_field(serializers.ListField(child=serializers.DateTimeField()))
    def get_next_runs(self, check: Check) -> list[str]:
        if not check.enabled:
            return []
        field = serializers.DateTimeField()
        return [field.to_representation(t) for t in next_runs_of(check_effective_schedule(check))]

    @extend_schema_field(LatestResultSerializer(allow_null=True))
    def get_latest_result(self, check: Check) -> dict | None:
        result = getattr(check, "latest_result", None)
        if result is None:
            return None
        return LatestResultSerializer(result, context=self.context).data


class _CheckFieldsSerializer(InputSerializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    # Identifiers are verbatim: a column named "amount " is not "amount".
    column = serializers.CharField(
        max_length=255, required=False, allow_blank=True, trim_whitespace=False
    )
    params = serializers.JSONField(
        required=False,
        help_text="By kind: accepted_values {values: [...]}, range {min, max}, pattern "
        "{regex}, row_count {min, max}, freshness {max_age_hours}, volume_change "
        "{max_change_percent, window}, custom_sql {sql: 'SELECT count(*) FROM {table} "
        "WHERE ...'} (read-only SQL returning the number of failing rows).",
    )
    tolerance_percent = serializers.FloatField(
        required=False, help_text="Share of failing rows allowed, in percent (0 to 100)."
    )
    severity = SeverityField(required=False)
    schedule = serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        help_text="Cron (5 fields, UTC); blank: the product's default.",
    )
    enabled = serializers.BooleanField(required=False)


class CheckCreateSerializer(_CheckFieldsSerializer):
    port = serializers.CharField(
        required=False,
        help_text="Slug of the output port to check; may be left out when the product "
        "has one port.",
    )
    kind = CheckKindField()


class CheckUpdateSerializer(_CheckFieldsSerializer):
    kind = CheckKindField(required=False)


# --- check runs ------------------------------------------------------------------------


class CheckRunSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="Poll this until `is_finished`.")
    port = serializers.CharField(source="port.slug", read_only=True)
    status = CheckRunStatusField(read_only=True)
    trigger = CheckTriggerField(read_only=True)
    is_finished = serializers.BooleanField(read_only=True)
    requested_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    error = serializers.SerializerMethodField()

    class Meta:
        model = CheckRun
        fields = [
            "id",
            "url",
            "port",
            "status",
            "is_finished",
            "trigger",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "row_count",
            "statements",
            "passed",
            "failed",
            "errored",
            "error",
        ]
        read_only_fields = fields

    def get_url(self, run: CheckRun) -> str:
        return api_url(
            self.context.get("request"),
            "products-api:product-check-run-detail",
            product_key=run.port.product.key,
            pk=run.pk,
        )

    def get_error(self, run: CheckRun) -> str:
        if not run.error or self.context.get("can_edit"):
            return run.error
        return RUN_ERROR_HIDDEN


class CheckRunDetailSerializer(CheckRunSerializer):
    results = serializers.SerializerMethodField()

    class Meta(CheckRunSerializer.Meta):
        fields = [*CheckRunSerializer.Meta.fields, "results"]
        read_only_fields = fields

    @extend_schema_field(CheckResultSerializer(many=True))
    def get_results(self, run: CheckRun) -> list[dict]:
        return CheckResultSerializer(run.result_list, many=True, context=self.context).data


class CheckRunRequestSerializer(InputSerializer):
    port = serializers.CharField(
        required=False,
        help_text="Slug of the port whose checks run; may be left out when one port of "
        "the product has checks.",
    )
    checks = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=500,
        help_text="Ids of the checks to run; every enabled check of the port when left out.",
    )


# --- incidents -------------------------------------------------------------------------


class IncidentSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    port = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    cause = IncidentCauseField(read_only=True)
    severity = SeverityField(read_only=True)
    status = IncidentStatusField(read_only=True)
    acknowledged_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Incident
        fields = [
            "id",
            "url",
            "title",
            "cause",
            "severity",
            "status",
            "port",
            "opened_at",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolution_note",
        ]
        read_only_fields = fields

    def get_url(self, incident: Incident) -> str:
        return api_url(
            self.context.get("request"),
            "products-api:product-incident-detail",
            product_key=incident.product.key,
            pk=incident.pk,
        )


class IncidentEventSerializer(serializers.ModelSerializer):
    kind = IncidentEventKindField(read_only=True)
    author = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = IncidentEvent
        fields = ["id", "kind", "author", "body", "created_at"]
        read_only_fields = fields


class IncidentDetailSerializer(IncidentSerializer):
    events = serializers.SerializerMethodField(help_text="The timeline, oldest first.")
    detail = serializers.SerializerMethodField(
        help_text="The technical reason (a source's address, the driver's error), for the "
        "domain's members and admins; empty for everyone else."
    )

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "detail", "events"]
        read_only_fields = fields

    def get_detail(self, incident: Incident) -> str:
        request = self.context.get("request")
        return incident_detail_for(incident=incident, user=getattr(request, "user", None))

    @extend_schema_field(IncidentEventSerializer(many=True))
    def get_events(self, incident: Incident) -> list[dict]:
        return IncidentEventSerializer(incident.event_list, many=True).data


class IncidentAcknowledgeSerializer(InputSerializer):
    note = serializers.CharField(required=False, allow_blank=True)


class IncidentCommentSerializer(InputSerializer):
    body = serializers.CharField(allow_blank=True, trim_whitespace=False)


class IncidentResolveSerializer(InputSerializer):
    note = serializers.CharField(
        allow_blank=True, trim_whitespace=False, help_text="How it was resolved."
    )


# --- SLOs ------------------------------------------------------------------------------


class SLOAttainmentSerializer(serializers.Serializer):
    window_days = serializers.IntegerField()
    good = serializers.IntegerField()
    total = serializers.IntegerField()
    attainment_percent = serializers.FloatField(
        allow_null=True, help_text="Null when the window holds no data."
    )
    target_percent = serializers.FloatField()
    met = serializers.BooleanField(allow_null=True)
    error_budget_remaining_percent = serializers.FloatField()
    budget_spent_percent = serializers.FloatField()


class SLOSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    kind = SLOKindField(read_only=True)
    attainment_7d = serializers.SerializerMethodField()
    attainment_30d = serializers.SerializerMethodField()

    class Meta:
        model = ServiceLevelObjective
        fields = [
            "id",
            "url",
            "kind",
            "target_percent",
            "threshold_hours",
            "value",
            "unit",
            "description",
            "attainment_7d",
            "attainment_30d",
            "created_at",
        ]
        read_only_fields = fields

    def get_url(self, slo: ServiceLevelObjective) -> str:
        return api_url(
            self.context.get("request"),
            "products-api:product-slo-detail",
            product_key=slo.product.key,
            pk=slo.pk,
        )

    def _window(self, slo: ServiceLevelObjective, days: int) -> dict:
        return SLOAttainmentSerializer(slo.attainments[days]).data

    @extend_schema_field(SLOAttainmentSerializer)
    def get_attainment_7d(self, slo: ServiceLevelObjective) -> dict:
        return self._window(slo, 7)

    @extend_schema_field(SLOAttainmentSerializer)
    def get_attainment_30d(self, slo: ServiceLevelObjective) -> dict:
        return self._window(slo, 30)


class SLOCreateSerializer(InputSerializer):
    kind = SLOKindField()
    target_percent = serializers.FloatField(help_text="For example 99 (percent).")
    threshold_hours = serializers.FloatField(
        required=False, allow_null=True, help_text="Freshness SLOs: the largest lag allowed."
    )
    value = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="Stream SLOs: the largest consumer lag (messages) or invalid messages per "
        "minute allowed.",
    )
    description = serializers.CharField(required=False, allow_blank=True)


class SLOUpdateSerializer(InputSerializer):
    kind = SLOKindField(required=False)
    target_percent = serializers.FloatField(required=False)
    threshold_hours = serializers.FloatField(required=False, allow_null=True)
    value = serializers.CharField(required=False, allow_blank=True, max_length=100)
    description = serializers.CharField(required=False, allow_blank=True)


# --- trust score -----------------------------------------------------------------------


class TrustComponentSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    evidence = serializers.DictField(help_text="What the component was computed from.")
    evidence_url = serializers.CharField(help_text="Where the evidence is, in the API.")
    page_url = serializers.CharField(help_text="Where the evidence is, on the product's page.")


class TrustPointSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField()
    score = serializers.FloatField()
    quality = serializers.FloatField()
    reliability = serializers.FloatField()
    documentation = serializers.FloatField()
    support = serializers.FloatField()


class TrustSerializer(serializers.Serializer):
    product = serializers.CharField(help_text="The product's key.")
    score = serializers.FloatField(allow_null=True, help_text="0 to 100; null before the first.")
    computed_at = serializers.DateTimeField(allow_null=True)
    components = TrustComponentSerializer(many=True)
    evidence = serializers.DictField()
    history = TrustPointSerializer(many=True, help_text="Snapshots of the last 30 days.")
    how_computed_url = serializers.CharField()
