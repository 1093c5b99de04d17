"""Shapes of the scheduled-exports API. Output serializers turn schedules and runs into
JSON; input serializers only parse a body, and the view hands the values to a service,
which holds the rules (each bad field named, 400)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from products.catalog.api.serializers import InputSerializer, enum_field
from sharing.access.api.serializers import COLUMNS_HELP, FILTER_HELP
from sharing.choices import FILE_FORMATS, DataFormat, ExportStatus, ExportTrigger
from sharing.exports.services.runs import (
    export_file_name,
    export_run_duration,
    export_schedule_next_runs,
)
from sharing.models import ExportRun, ExportSchedule

ExportStatusField = enum_field(ExportStatus)
ExportTriggerField = enum_field(ExportTrigger)
FORMAT_CHOICES = [(value, DataFormat(value).label) for value in FILE_FORMATS]
CRON_HELP = (
    "Five fields: minute hour day-of-month month day-of-week, e.g. `0 6 * * 1-5` "
    "(06:00 on weekdays), in the schedule's time zone."
)


class _Username(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(slug_field="username", read_only=True, **kwargs)


class ExportScheduleSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.key", read_only=True)
    port = serializers.CharField(source="port.slug", read_only=True, allow_null=True)
    created_by = _Username()
    format = serializers.ChoiceField(choices=FORMAT_CHOICES, read_only=True)
    columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False), help_text=COLUMNS_HELP
    )
    masked_columns = serializers.ListField(child=serializers.CharField(trim_whitespace=False))
    row_filter = serializers.JSONField(help_text=FILTER_HELP)
    next_runs = serializers.SerializerMethodField(
        help_text="The next three times it fires, in its time zone (none when paused or ended)."
    )
    url = serializers.SerializerMethodField()
    runs_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportSchedule
        fields = [
            "id",
            "url",
            "product",
            "port",
            "name",
            "created_by",
            "columns",
            "row_filter",
            "masked_columns",
            "format",
            "neutralise_formulas",
            "cron",
            "timezone",
            "next_runs",
            "retention_runs",
            "quality_gate",
            "enabled",
            "created_at",
            "updated_at",
            "ended_at",
            "end_reason",
            "runs_url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.DateTimeField()))
    def get_next_runs(self, schedule) -> list:
        return [moment.isoformat() for moment in export_schedule_next_runs(schedule)]

    def get_url(self, schedule) -> str:
        return reverse(
            "export-schedule-detail",
            kwargs={"pk": schedule.pk},
            request=self.context.get("request"),
        )

    def get_runs_url(self, schedule) -> str:
        return reverse(
            "export-schedule-runs", kwargs={"pk": schedule.pk}, request=self.context.get("request")
        )


class ExportScheduleInputSerializer(InputSerializer):
    """Create (name and cron required) or change (any of them) a schedule."""

    name = serializers.CharField(max_length=200, allow_blank=True)
    port = serializers.CharField(
        required=False, help_text="An output port's slug (default: the first port by name)."
    )
    columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False), required=False, help_text=COLUMNS_HELP
    )
    row_filter = serializers.JSONField(required=False, help_text=FILTER_HELP)
    masked_columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False),
        required=False,
        help_text="Columns written as `****`, besides any the creator's access masks.",
    )
    format = serializers.ChoiceField(choices=FORMAT_CHOICES, required=False)
    neutralise_formulas = serializers.BooleanField(
        required=False,
        help_text="CSV only: put a ' in front of text cells starting with = + - @, a tab or a "
        "carriage return, so a spreadsheet opening the file shows them instead of running "
        "them as formulas (off: values are written as they are).",
    )
    cron = serializers.CharField(allow_blank=True, help_text=CRON_HELP)
    timezone = serializers.CharField(
        required=False, help_text="An IANA time zone name (default UTC), e.g. Europe/Paris."
    )
    retention_runs = serializers.IntegerField(
        required=False, help_text="How many runs' files are kept (1 to 365, default 7)."
    )
    quality_gate = serializers.BooleanField(
        required=False,
        help_text="Run the product's checks first; hold the export when an error-severity "
        "check fails.",
    )
    enabled = serializers.BooleanField(required=False)


class ExportRunSerializer(serializers.ModelSerializer):
    schedule = serializers.PrimaryKeyRelatedField(read_only=True)
    product = serializers.CharField(source="schedule.product.key", read_only=True)
    trigger = ExportTriggerField(read_only=True)
    status = ExportStatusField(read_only=True)
    requested_by = _Username(allow_null=True)
    format = serializers.SerializerMethodField()
    file_name = serializers.SerializerMethodField()
    duration_seconds = serializers.SerializerMethodField()
    columns = serializers.SerializerMethodField()
    masked_columns = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField(
        help_text="Where to download the file (succeeded runs whose file is kept)."
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = ExportRun
        fields = [
            "id",
            "url",
            "schedule",
            "product",
            "trigger",
            "slot",
            "status",
            "requested_by",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "duration_seconds",
            "format",
            "file_name",
            "rows",
            "bytes",
            "sha256",
            "columns",
            "masked_columns",
            "error",
            "pruned_at",
            "download_url",
        ]
        read_only_fields = fields

    def _written(self, run) -> dict:
        return run.detail.get("written") or {}

    def get_format(self, run) -> str:
        return self._written(run).get("format") or run.schedule.format

    def get_file_name(self, run) -> str | None:
        return export_file_name(run) if run.file_name else None

    def get_duration_seconds(self, run) -> float | None:
        return export_run_duration(run)

    def get_columns(self, run) -> list[str]:
        return list(self._written(run).get("columns") or [])

    def get_masked_columns(self, run) -> list[str]:
        return list(self._written(run).get("masked") or [])

    def get_url(self, run) -> str:
        return reverse(
            "export-run-detail", kwargs={"pk": run.pk}, request=self.context.get("request")
        )

    def get_download_url(self, run) -> str | None:
        if run.status != ExportStatus.SUCCEEDED or run.pruned_at or not run.file_name:
            return None
        return reverse(
            "export-run-download", kwargs={"pk": run.pk}, request=self.context.get("request")
        )
