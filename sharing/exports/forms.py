"""The export schedule form. It parses input; sharing.exports.services.schedules holds the
rules and names each bad field (its messages go beside the field)."""

from __future__ import annotations

import json
import zoneinfo

from django import forms

from sharing.access.filters import filter_builder_attrs
from sharing.choices import FILE_FORMATS, DataFormat
from sharing.exports.services.schedules import MAX_RETENTION_RUNS
from sharing.models import ExportSchedule

# The cron helper's presets: (expression, what it means).
CRON_PRESETS = [
    ("0 * * * *", "Every hour, on the hour"),
    ("0 6 * * *", "Every day at 06:00"),
    ("0 6 * * 1-5", "Weekdays at 06:00"),
    ("0 7 * * 1", "Mondays at 07:00"),
    ("0 5 1 * *", "The 1st of each month at 05:00"),
    ("*/15 * * * *", "Every 15 minutes"),
]
FORMAT_HELP = {
    DataFormat.CSV: "Comma-separated text with a header row; opens anywhere.",
    DataFormat.PARQUET: "Columnar and compressed, with types: for pandas, Spark, DuckDB.",
    DataFormat.XLSX: "An Excel sheet: at most 1,048,575 rows.",
    DataFormat.JSONL: "One JSON object per line.",
}


def _timezones() -> list[tuple[str, str]]:
    names = sorted(zoneinfo.available_timezones() - {"UTC"})
    return [("UTC", "UTC"), *((name, name.replace("_", " ")) for name in names)]


class ExportScheduleForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="What the file is for, e.g. “Finance daily”.")
    port = forms.ChoiceField(label="Output port")
    format = forms.ChoiceField(
        widget=forms.RadioSelect,
        choices=[(value, DataFormat(value).label) for value in FILE_FORMATS],
        initial=DataFormat.CSV,
    )
    columns = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave every column ticked to export all of them (and columns added later).",
    )
    masked_columns = forms.MultipleChoiceField(
        label="Mask these columns",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Written as ****, whatever your access. Columns your access masks are "
        "masked anyway.",
    )
    row_filter = forms.CharField(
        label="Only rows where",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": '[{"column": "country", "op": "=", "value": "BE"}]'}
        ),
        help_text="Optional: only rows meeting every condition. Your own row filter applies "
        "as well. Without the filter builder, write a JSON list (op: = != < <= > >= in, "
        "not in, is null, is not null).",
    )
    cron = forms.CharField(
        label="Schedule (cron)",
        max_length=100,
        initial="0 6 * * *",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="Five fields: minute hour day-of-month month day-of-week.",
    )
    timezone = forms.ChoiceField(label="Time zone", initial="UTC")
    retention_runs = forms.IntegerField(
        label="Keep the files of the last",
        min_value=1,
        max_value=MAX_RETENTION_RUNS,
        initial=7,
        help_text="runs. Older files are removed; their runs stay in the history.",
    )
    neutralise_formulas = forms.BooleanField(
        label="Neutralise formulas (CSV): put a ' in front of text cells starting with "
        "= + - @, a tab or a carriage return, so a spreadsheet shows them instead of "
        "running them",
        required=False,
    )
    quality_gate = forms.BooleanField(
        label="Quality gate: run the product's checks first, and hold the export when an "
        "error-severity check fails",
        required=False,
    )
    enabled = forms.BooleanField(
        label="Enabled (runs on its schedule)", required=False, initial=True
    )

    def __init__(
        self,
        *args,
        ports: list,
        columns: list[str],
        column_types: dict[str, str] | None = None,
        values_url: str = "",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.all_columns = columns
        if column_types is not None:
            filter_builder_attrs(
                self.fields["row_filter"].widget.attrs, column_types, values_url=values_url
            )
        self.fields["port"].choices = [(port.slug, port.name) for port in ports]
        if len(ports) == 1:
            self.fields["port"].widget = forms.HiddenInput()
            self.fields["port"].initial = ports[0].slug
        self.fields["columns"].choices = [(name, name) for name in columns]
        self.fields["masked_columns"].choices = [(name, name) for name in columns]
        self.fields["timezone"].choices = _timezones()
        if not self.is_bound and "columns" not in self.initial:
            self.initial["columns"] = columns
        self.format_help = FORMAT_HELP

    @classmethod
    def initial_for(cls, schedule: ExportSchedule, columns: list[str]) -> dict:
        return {
            "name": schedule.name,
            "port": schedule.port.slug if schedule.port else "",
            "format": schedule.format,
            "neutralise_formulas": schedule.neutralise_formulas,
            "columns": schedule.columns or columns,
            "masked_columns": schedule.masked_columns,
            "row_filter": json.dumps(schedule.row_filter) if schedule.row_filter else "",
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "retention_runs": schedule.retention_runs,
            "quality_gate": schedule.quality_gate,
            "enabled": schedule.enabled,
        }

    def service_fields(self) -> dict:
        data = self.cleaned_data
        chosen = data["columns"]
        return {
            "name": data["name"],
            "port": data["port"],
            "format": data["format"],
            "neutralise_formulas": data["neutralise_formulas"],
            # Every column ticked (or none): all columns, including ones added later.
            "columns": [] if not chosen or set(chosen) >= set(self.all_columns) else chosen,
            "masked_columns": data["masked_columns"],
            "row_filter": data["row_filter"] or [],
            "cron": data["cron"],
            "timezone": data["timezone"],
            "retention_runs": data["retention_runs"],
            "quality_gate": data["quality_gate"],
            "enabled": data["enabled"],
        }
