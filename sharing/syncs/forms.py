"""Forms of the syncs pages: a sync (what, where, how, when, guardrails) and a
destination. They parse input; sharing.syncs services hold the rules and name each bad
field (their messages go beside the field, nothing is saved)."""

from __future__ import annotations

import json
import zoneinfo

from django import forms
from django.forms.models import fields_for_model, model_to_dict

from products.choices import MetricGrain
from sharing.models.syncs import DestinationKind, Sync, SyncDestination, SyncMode, SyncTrigger
from sharing.syncs.services.destinations import DESTINATION_FIELDS

MAPPING_PREFIX = "map__"
METRIC_PREFIX = "metric:"  # a source choice naming a metric, not a port
METRIC_COLUMNS = ("period", "value")  # a metric's values' own columns, beside its dimensions
GUARDRAIL_HELP = {
    "max_changed_pct": "Hold the run for approval when more than this % of the records the "
    "destination holds from this sync would be added or changed (not on the first run).",
    "max_removed_pct": "Hold when more than this % would be removed (mirror mode).",
    "hold_on_empty_source": "Hold when the source returns no rows while the destination "
    "holds records from this sync: an empty source is more often a broken one.",
    "max_count_move_pct": "Hold when the source's row count moves more than this % from the "
    "median of the last 5 runs.",
    "breaker_failures": "Circuit breaker: pause the sync after this many failed runs in a row.",
    "column_limits": 'Per-column limits for numbers, a JSON list: [{"column": "bid", '
    '"max_change_pct": 10, "max_sum": 100000}]: a record whose value moves more than '
    "max_change_pct % since it was last sent, or a run whose sum of the column passes "
    "max_sum, holds the run with the offending records. Required when the loop warning shows.",
}
GUARDRAIL_DEFAULTS = {
    "max_changed_pct": 20.0,
    "max_removed_pct": 5.0,
    "hold_on_empty_source": True,
    "max_count_move_pct": 50.0,
    "breaker_failures": 3,
    "column_limits": "",
}


def _timezones() -> list[tuple[str, str]]:
    names = sorted(zoneinfo.available_timezones() - {"UTC"})
    return [("UTC", "UTC"), *((name, name.replace("_", " ")) for name in names)]


class SyncForm(forms.Form):
    name = forms.CharField(
        max_length=200, help_text="What it is for, e.g. “Lead scores to the CRM”."
    )
    port = forms.ChoiceField(
        label="Source",
        help_text="An output port's rows, or a metric's values (computed as its page shows them).",
    )
    metric_dimensions = forms.MultipleChoiceField(
        label="Group the metric by",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="A metric source only: the dimensions of its values.",
    )
    metric_grain = forms.ChoiceField(
        label="Metric time grain",
        required=False,
        choices=[("", "No time grain"), *MetricGrain.choices],
        help_text="A metric source only: one value per period (the period is a column).",
    )
    destination = forms.ChoiceField(
        help_text="Where the records go. Destinations are registered by admins and domain owners."
    )
    columns = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The columns sent: those you may read. Masked columns are sent masked. A "
        "metric source sends its period, dimensions and value.",
    )
    key_columns = forms.MultipleChoiceField(
        label="Key columns",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The primary key: unique in the source, among the columns sent, not masked. "
        "Each run diffs the source against what the destination acknowledged, by this key. "
        "A metric source is keyed by its period and dimensions.",
    )
    # Not typed: the per-column fields below are. It carries the service's errors about
    # the mapping as a whole (two columns to one field) beside the mapping.
    mapping = forms.CharField(required=False, widget=forms.HiddenInput)
    mode = forms.ChoiceField(
        widget=forms.RadioSelect, choices=SyncMode.choices, initial=SyncMode.UPSERT
    )
    trigger = forms.ChoiceField(label="When", widget=forms.RadioSelect, choices=SyncTrigger.choices)
    cron = forms.CharField(
        label="Schedule (cron)",
        max_length=100,
        required=False,
        initial="0 6 * * *",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="Five fields: minute hour day-of-month month day-of-week (schedule only).",
    )
    timezone = forms.ChoiceField(label="Time zone", initial="UTC")
    max_changed_pct = forms.FloatField(
        label="Changed records at most (%)",
        min_value=0,
        help_text=GUARDRAIL_HELP["max_changed_pct"],
    )
    max_removed_pct = forms.FloatField(
        label="Removed records at most (%)",
        min_value=0,
        help_text=GUARDRAIL_HELP["max_removed_pct"],
    )
    hold_on_empty_source = forms.BooleanField(
        label="Hold when the source is empty",
        required=False,
        help_text=GUARDRAIL_HELP["hold_on_empty_source"],
    )
    max_count_move_pct = forms.FloatField(
        label="Row count moves at most (%)",
        min_value=0,
        help_text=GUARDRAIL_HELP["max_count_move_pct"],
    )
    breaker_failures = forms.IntegerField(
        label="Pause after failed runs in a row",
        min_value=1,
        help_text=GUARDRAIL_HELP["breaker_failures"],
    )
    column_limits = forms.CharField(
        label="Per-column limits",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": '[{"column": "bid", "max_change_pct": 10}]'}
        ),
        help_text=GUARDRAIL_HELP["column_limits"],
    )

    def __init__(
        self,
        *args,
        ports: list,
        destinations: list[SyncDestination],
        columns: list[str],
        destination_fields: list[str] | None = None,
        metrics: list | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        metrics = metrics or []
        self.has_metrics = bool(metrics)
        self.port_columns = list(columns)
        # The mapping covers a metric's own columns too when the product has metrics.
        self.all_columns = [
            *columns,
            *(c for c in METRIC_COLUMNS if metrics and c not in columns),
        ]
        self.destination_fields = destination_fields
        self.fields["port"].choices = [(port.slug, port.name) for port in ports] + [
            (METRIC_PREFIX + metric.key, f"Metric: {metric.name} ({metric.key})")
            for metric in metrics
        ]
        if len(ports) == 1 and not metrics:
            self.fields["port"].widget = forms.HiddenInput()
            self.fields["port"].initial = ports[0].slug
        dimensions = dict.fromkeys(d for metric in metrics for d in metric.dimensions)
        self.fields["metric_dimensions"].choices = [(d, d) for d in dimensions]
        self.fields["destination"].choices = [
            (str(d.pk), f"{d.name} ({d.get_kind_display()})") for d in destinations
        ]
        self.fields["columns"].choices = [(name, name) for name in columns]
        self.fields["key_columns"].choices = [(name, name) for name in columns]
        self.fields["timezone"].choices = _timezones()
        for name, value in GUARDRAIL_DEFAULTS.items():
            self.fields[name].initial = value
        # The mapping: per column a destination field (a select when the destination
        # lists its fields; empty keeps the column's own name).
        for column in self.all_columns:
            label = f"{column} →"
            if destination_fields is not None:
                choices = [("", f"{column} (same name)")] + [(f, f) for f in destination_fields]
                field = forms.ChoiceField(label=label, required=False, choices=choices)
            else:
                field = forms.CharField(
                    label=label,
                    required=False,
                    max_length=200,
                    widget=forms.TextInput(attrs={"placeholder": column}),
                )
            self.fields[MAPPING_PREFIX + column] = field
        if not self.is_bound and "columns" not in self.initial:
            self.initial["columns"] = columns

    def mapping_field_rows(self):
        """(mapping field, the source kind it is for: "metric" for a metric's own
        columns, "port" for a column no metric of the product groups by, "" for both)."""
        if not self.has_metrics:
            return [(self[MAPPING_PREFIX + column], "") for column in self.all_columns]
        grouped = {choice for choice, _ in self.fields["metric_dimensions"].choices}
        rows = []
        for column in self.all_columns:
            if column in METRIC_COLUMNS and column not in self.port_columns:
                only_for = "metric"
            elif column not in grouped:
                only_for = "port"
            else:
                only_for = ""
            rows.append((self[MAPPING_PREFIX + column], only_for))
        return rows

    def metric_fields(self):
        return [self["metric_dimensions"], self["metric_grain"]] if self.has_metrics else []

    def guardrail_fields(self):
        return [self[name] for name in GUARDRAIL_DEFAULTS]

    def clean_column_limits(self):
        raw = (self.cleaned_data.get("column_limits") or "").strip()
        if not raw:
            return []
        try:
            limits = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(
                f"This is not JSON: {exc.msg} (line {exc.lineno})."
            ) from None
        if not isinstance(limits, list) or not all(isinstance(item, dict) for item in limits):
            raise forms.ValidationError(
                'Write a list of objects, e.g. [{"column": "bid", "max_change_pct": 10}].'
            )
        return limits

    @classmethod
    def initial_for(cls, sync: Sync) -> dict:
        query = sync.metric_query or {}
        initial = {
            "name": sync.name,
            "port": (
                METRIC_PREFIX + sync.metric.key
                if sync.metric
                else (sync.port.slug if sync.port else "")
            ),
            "metric_dimensions": query.get("dimensions") or [],
            "metric_grain": query.get("grain") or "",
            "destination": str(sync.destination_id),
            "columns": sync.columns,
            "key_columns": sync.key_columns,
            "mode": sync.mode,
            "trigger": sync.trigger,
            "cron": sync.cron,
            "timezone": sync.timezone,
            "column_limits": json.dumps(sync.column_limits) if sync.column_limits else "",
        }
        for name in GUARDRAIL_DEFAULTS:
            if name != "column_limits":
                initial[name] = getattr(sync, name)
        for column, target in (sync.mapping or {}).items():
            initial[MAPPING_PREFIX + column] = target
        return initial

    def service_fields(self) -> dict:
        """The keyword arguments of sync_create / sync_update (but `destination`, which the
        view turns into the destination)."""
        data = self.cleaned_data
        source = data["port"] or ""
        metric = source[len(METRIC_PREFIX) :] if source.startswith(METRIC_PREFIX) else ""
        if metric:  # the metric's values: all of them, keyed by period and dimensions
            dimensions = data["metric_dimensions"]
            mapped = [c for c in self.all_columns if c in METRIC_COLUMNS or c in dimensions]
            columns: list[str] = []
            key_columns: list[str] = []
            metric_query = {"dimensions": dimensions, "grain": data["metric_grain"] or None}
        else:
            mapped = columns = data["columns"]
            key_columns = data["key_columns"]
            metric_query = None
        mapping = {
            column: data[MAPPING_PREFIX + column].strip()
            for column in mapped
            if (data.get(MAPPING_PREFIX + column) or "").strip()
            and data[MAPPING_PREFIX + column].strip() != column
        }
        return {
            "name": data["name"],
            "port_slug": None if metric else (source or None),
            "metric": metric,
            "metric_query": metric_query,
            "columns": columns,
            "key_columns": key_columns,
            "mapping": mapping,
            "mode": data["mode"],
            "trigger": data["trigger"],
            "cron": data["cron"] if data["trigger"] == SyncTrigger.SCHEDULE else "",
            "timezone": data["timezone"],
            "guardrails": {name: data[name] for name in GUARDRAIL_DEFAULTS},
        }


# The connection fields, grouped by the kinds they serve (the page shows them so).
CONNECTION_GROUPS = (
    ("HTTP API", ("url", "auth_header", "batch_size", "body_template", "rate_per_second")),
    ("Database server (PostgreSQL, MySQL / MariaDB)", ("host", "port", "database", "username")),
    ("DuckDB", ("path",)),
    ("Table (PostgreSQL, MySQL / MariaDB, DuckDB)", ("schema_name", "table_name")),
    ("NATS JetStream", ("nats_url", "subject")),
)


class DestinationForm(forms.Form):
    """Register or change a destination (the model's fields, parsed; the service checks
    the fields of the chosen kind, and that `secret_env` is a variable name, not a
    secret)."""

    def __init__(self, *args, domains: list, admin: bool, destination=None, **kwargs):
        if destination is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                **model_to_dict(destination, fields=DESTINATION_FIELDS),
                "domain": destination.domain.slug if destination.domain_id else "",
            }
        super().__init__(*args, **kwargs)
        self.fields.update(
            fields_for_model(
                SyncDestination,
                fields=[name for name in DESTINATION_FIELDS if name != "url"],
                widgets={
                    "description": forms.Textarea(attrs={"rows": 2}),
                    "body_template": forms.Textarea(attrs={"rows": 3}),
                    "kind": forms.RadioSelect,
                },
            )
        )
        self.fields["kind"].choices = DestinationKind.choices
        self.fields["url"] = forms.URLField(  # https unless private targets are allowed
            label="URL", required=False, max_length=500, assume_scheme="https"
        )
        self.fields["domain"] = forms.ChoiceField(
            required=not admin,
            choices=([("", "Every domain")] if admin else []) + [(d.slug, d.name) for d in domains],
            help_text="The domain whose syncs may use it. “Every domain”: admins only.",
        )
        self.fields["secret_env"].widget.attrs.update(
            {"autocomplete": "off", "spellcheck": "false", "placeholder": "CRM_API_TOKEN"}
        )
        self.domains_by_slug = {d.slug: d for d in domains}

    def main_fields(self):
        return [self[name] for name in ("name", "kind", "domain", "description", "secret_env")]

    def connection_groups(self):
        return [(legend, [self[name] for name in names]) for legend, names in CONNECTION_GROUPS]

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        slug = data.pop("domain", "")
        data["domain"] = self.domains_by_slug.get(slug) if slug else None
        return data
