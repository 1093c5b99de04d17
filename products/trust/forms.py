"""Forms of the trust pages: checks, SLOs and incident actions. They parse input into the
values the services take (products.trust.services.checks, .slos, .incidents); the services
decide what is valid, and their errors are shown beside the field they concern."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from portal.core.forms import add_service_errors
from products.choices import (
    COLUMN_CHECKS,
    MEASURED_SLO_KINDS,
    ROW_LEVEL_CHECKS,
    STREAM_SLO_KINDS,
    CheckKind,
    Severity,
    SLOKind,
)
from products.models import Column
from products.trust.services.checks import VOLUME_WINDOW_DEFAULT

TEXTAREA_SMALL = forms.Textarea(attrs={"rows": 3})

# The form fields holding each kind's params (the first one gets a service's `params`
# error when it does not say which).
KIND_PARAM_FIELDS: dict[str, tuple[str, ...]] = {
    CheckKind.ACCEPTED_VALUES: ("accepted_values",),
    CheckKind.RANGE: ("range_min", "range_max"),
    CheckKind.PATTERN: ("regex",),
    CheckKind.ROW_COUNT: ("row_count_min", "row_count_max"),
    CheckKind.FRESHNESS: ("max_age_hours",),
    CheckKind.VOLUME_CHANGE: ("max_change_percent", "window"),
    CheckKind.CUSTOM_SQL: ("sql",),
}

KIND_HELP = {
    CheckKind.NOT_NULL: "Rows where the column is empty (null) fail.",
    CheckKind.UNIQUE: "Rows repeating a value already seen in the column fail.",
    CheckKind.ACCEPTED_VALUES: "Rows whose value is not in the list fail (nulls pass).",
    CheckKind.RANGE: "Rows whose value is below the minimum or above the maximum fail.",
    CheckKind.PATTERN: "Rows whose value does not match the regular expression fail.",
    CheckKind.ROW_COUNT: "The table fails when it has fewer or more rows than allowed.",
    CheckKind.FRESHNESS: "Fails when the column's newest timestamp is older than allowed.",
    CheckKind.VOLUME_CHANGE: (
        "Fails when the row count moves further from the median of recent counts than allowed."
    ),
    CheckKind.SCHEMA: "Fails when columns are missing, extra or of another type than declared.",
    CheckKind.CUSTOM_SQL: "Your own read-only query returns the number of failing rows.",
}


def attach_service_errors(form: forms.Form, error: ValidationError, *, kind: str = "") -> None:
    """Like portal.core.forms.add_service_errors, but a service's error about `params` goes
    beside the first field of the check's kind (the form has no `params` field)."""
    if hasattr(error, "error_dict") and "params" in error.error_dict:
        messages = error.message_dict
        fields = KIND_PARAM_FIELDS.get(kind)
        if fields:
            form.add_error(fields[0], messages.pop("params"))
        error = ValidationError(messages) if messages else None
    if error is not None:
        add_service_errors(form, error)


def _number(value: float | None):
    """A float that is a whole number as an int (row counts, tidy JSON)."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


class CheckForm(forms.Form):
    port = forms.ModelChoiceField(
        queryset=None,
        empty_label=None,
        label="Output port",
        help_text="The table or file this check looks at.",
    )
    kind = forms.ChoiceField(
        choices=CheckKind.choices,
        label="What to check",
        widget=forms.Select(attrs={"data-check-kind": ""}),
    )
    column = forms.CharField(
        max_length=255,
        required=False,
        strip=False,  # identifiers are verbatim: "amount " is not "amount"
        help_text="The column this check looks at.",
        widget=forms.TextInput(attrs={"list": "known-columns", "autocomplete": "off"}),
    )
    name = forms.CharField(
        max_length=200,
        required=False,
        help_text="Made from the kind and column when empty, for example “Not null email”.",
    )
    severity = forms.ChoiceField(
        choices=Severity.choices,
        initial=Severity.ERROR,
        widget=forms.RadioSelect,
        help_text="A failing error-severity check opens an incident and weighs double in "
        "the trust score; a warning is only shown.",
    )
    tolerance_percent = forms.FloatField(
        label="Tolerance (% of rows)",
        initial=0,
        help_text="Share of failing rows allowed, from 0 to 100. 0.5 allows at most 0.5% "
        "failing rows; 0 allows none.",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    schedule = forms.CharField(
        max_length=120,
        required=False,
        help_text="",  # set in __init__: names the product's default
        widget=forms.TextInput(attrs={"placeholder": "0 6 * * *", "class": "mono"}),
    )
    enabled = forms.BooleanField(
        required=False, initial=True, help_text="Disabled checks keep their history but do not run."
    )

    # --- kind-specific parameters ---
    accepted_values = forms.CharField(
        required=False,
        label="Accepted values",
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="One value per line, as written in the data.",
    )
    range_min = forms.FloatField(
        required=False, label="Minimum", widget=forms.NumberInput(attrs={"step": "any"})
    )
    range_max = forms.FloatField(
        required=False, label="Maximum", widget=forms.NumberInput(attrs={"step": "any"})
    )
    regex = forms.CharField(
        required=False,
        label="Regular expression",
        widget=forms.TextInput(attrs={"class": "mono", "placeholder": r"^SKU-\d{3}$"}),
        help_text="Values must match it (anchor with ^ and $ to match the whole value).",
    )
    row_count_min = forms.IntegerField(required=False, min_value=0, label="At least (rows)")
    row_count_max = forms.IntegerField(required=False, min_value=0, label="At most (rows)")
    max_age_hours = forms.FloatField(
        required=False,
        label="Newest value at most (hours old)",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    max_change_percent = forms.FloatField(
        required=False,
        label="Largest change (%)",
        widget=forms.NumberInput(attrs={"step": "any"}),
        help_text="How far the row count may move from the median of recent counts.",
    )
    window = forms.IntegerField(
        required=False,
        initial=VOLUME_WINDOW_DEFAULT,
        label="Recent counts compared",
        help_text="How many past row counts the median is taken over (1 to 90).",
    )
    sql = forms.CharField(
        required=False,
        label="SQL",
        widget=forms.Textarea(
            attrs={
                "rows": 6,
                "class": "mono",
                "placeholder": "SELECT count(*) FROM {table} WHERE amount < 0",
                "spellcheck": "false",
            }
        ),
        help_text="One read-only SELECT that returns a single number: how many rows fail. "
        "Write {table} where the port's table or file goes; the portal puts it in. It "
        "runs in a read-only transaction with a 30-second time limit; SQL that writes "
        "(INSERT, UPDATE, DELETE, CREATE…) is refused.",
    )

    def __init__(self, *args, ports, default_schedule: str, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["port"].queryset = ports
        self._offer_known_columns(ports)
        if editing or len(ports) <= 1:
            # A check stays on its port; a product with one port needs no choice.
            self.fields["port"].required = False
            self.fields["port"].widget = forms.HiddenInput()
        self.fields["schedule"].help_text = (
            "When it runs: a cron expression of 5 fields (minute hour day month weekday), "
            f"in UTC. Empty: the product's default, {default_schedule}."
        )

    def _offer_known_columns(self, ports) -> None:
        """The column is picked from the ports' known columns when there are some (a typo
        cannot be saved to fail at its first run); free text while no schema is known. A
        column no longer in the schema stays choosable, marked, so an edit shows it."""
        names = sorted(set(Column.objects.filter(port__in=ports).values_list("name", flat=True)))
        if not names:
            return
        current = (self.data.get("column") if self.is_bound else self.initial.get("column")) or ""
        choices = [("", "Choose a column"), *((name, name) for name in names)]
        if current and current not in names:
            choices.append((current, f"{current} (not in the schema)"))
        self.fields["column"].widget = forms.Select(choices=choices)

    @property
    def kind_help(self) -> dict[str, str]:
        return {str(kind): text for kind, text in KIND_HELP.items()}

    @classmethod
    def initial_for(cls, check) -> dict:
        params = check.params or {}
        initial = {
            "port": check.port_id,
            "kind": check.kind,
            "column": check.column,
            "name": check.name,
            "severity": check.severity,
            "tolerance_percent": check.tolerance_percent,
            "schedule": check.schedule,
            "enabled": check.enabled,
        }
        kind = check.kind
        if kind == CheckKind.ACCEPTED_VALUES:
            initial["accepted_values"] = "\n".join(str(v) for v in params.get("values", []))
        elif kind == CheckKind.RANGE:
            initial.update(range_min=params.get("min"), range_max=params.get("max"))
        elif kind == CheckKind.PATTERN:
            initial["regex"] = params.get("regex", "")
        elif kind == CheckKind.ROW_COUNT:
            initial.update(row_count_min=params.get("min"), row_count_max=params.get("max"))
        elif kind == CheckKind.FRESHNESS:
            initial["max_age_hours"] = params.get("max_age_hours")
        elif kind == CheckKind.VOLUME_CHANGE:
            initial.update(
                max_change_percent=params.get("max_change_percent"),
                window=params.get("window", VOLUME_WINDOW_DEFAULT),
            )
        elif kind == CheckKind.CUSTOM_SQL:
            initial["sql"] = params.get("sql", "")
        return initial

    def params(self) -> dict:
        """The check's `params` from the fields of its kind (others are ignored)."""
        data = self.cleaned_data
        kind = data.get("kind")
        if kind == CheckKind.ACCEPTED_VALUES:
            lines = (data.get("accepted_values") or "").splitlines()
            return {"values": [line.strip() for line in lines if line.strip()]}
        if kind == CheckKind.RANGE:
            bounds = {"min": _number(data.get("range_min")), "max": _number(data.get("range_max"))}
            return {key: value for key, value in bounds.items() if value is not None}
        if kind == CheckKind.PATTERN:
            return {"regex": data.get("regex") or ""}
        if kind == CheckKind.ROW_COUNT:
            bounds = {"min": data.get("row_count_min"), "max": data.get("row_count_max")}
            return {key: value for key, value in bounds.items() if value is not None}
        if kind == CheckKind.FRESHNESS:
            return {"max_age_hours": _number(data.get("max_age_hours"))}
        if kind == CheckKind.VOLUME_CHANGE:
            params = {"max_change_percent": _number(data.get("max_change_percent"))}
            params["window"] = data.get("window") or VOLUME_WINDOW_DEFAULT
            return params
        if kind == CheckKind.CUSTOM_SQL:
            return {"sql": data.get("sql") or ""}
        return {}

    def service_fields(self) -> dict:
        """What check_create / check_update take."""
        data = self.cleaned_data
        kind = data["kind"]
        return {
            "name": data.get("name") or "",
            "kind": kind,
            "column": (data.get("column") or "") if kind in COLUMN_CHECKS else "",
            "params": self.params(),
            "tolerance_percent": data["tolerance_percent"]
            if kind in (*ROW_LEVEL_CHECKS, CheckKind.CUSTOM_SQL)
            else 0.0,
            "severity": data["severity"],
            "schedule": (data.get("schedule") or "").strip(),
            "enabled": data.get("enabled", False),
        }


class SLOForm(forms.Form):
    kind = forms.ChoiceField(
        choices=SLOKind.choices,
        widget=forms.RadioSelect,
        help_text="Freshness: data at most N hours old. Availability: the source answers "
        "probes. Quality: check evaluations pass.",
    )
    target_percent = forms.FloatField(
        label="Target (%)",
        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "99"}),
        help_text="The share of good events promised over a rolling window, for example 99. "
        "What is left to 100% is the error budget.",
    )
    threshold_hours = forms.FloatField(
        required=False,
        label="Largest lag (hours)",
        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "24"}),
        help_text="Freshness SLOs: data older than this is late.",
    )
    value = forms.FloatField(
        required=False,
        min_value=0,
        label="Largest value",
        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "1000"}),
        help_text="Consumer lag SLOs: the most messages the furthest durable consumer may be "
        "behind. Invalid messages SLOs: the most invalid messages per minute.",
    )
    description = forms.CharField(
        max_length=300,
        required=False,
        help_text="How you would say it to a consumer, e.g. “Yesterday's orders by 06:00 UTC”.",
    )

    FIELDS = ("kind", "target_percent", "threshold_hours", "value", "description")

    def __init__(self, *args, taken_kinds=(), kinds=MEASURED_SLO_KINDS, **kwargs):
        super().__init__(*args, **kwargs)
        # One SLO per kind: offer only the kinds the product does not have yet.
        self.fields["kind"].choices = [
            (value, label)
            for value, label in SLOKind.choices
            if value in kinds and value not in taken_kinds
        ]

    def service_fields(self) -> dict:
        fields = {name: self.cleaned_data.get(name) for name in self.FIELDS}
        # `value` is the threshold of stream SLOs only; others keep theirs (a contract's).
        if fields["kind"] not in STREAM_SLO_KINDS:
            del fields["value"]
        elif fields["value"] is None:
            fields["value"] = ""
        return fields

    @classmethod
    def initial_for(cls, slo) -> dict:
        initial = {name: getattr(slo, name) for name in cls.FIELDS}
        if slo.kind not in STREAM_SLO_KINDS:
            initial["value"] = None  # a contract's value of another kind is not edited here
        return initial


class IncidentAcknowledgeForm(forms.Form):
    note = forms.CharField(
        required=False,
        label="Note (optional)",
        widget=TEXTAREA_SMALL,
        help_text="What you are doing about it, for consumers following this incident.",
    )


class IncidentCommentForm(forms.Form):
    body = forms.CharField(
        required=False, label="Comment", widget=TEXTAREA_SMALL
    )  # the service says when it is empty


class IncidentResolveForm(forms.Form):
    note = forms.CharField(
        required=False,
        label="How was it resolved?",
        widget=TEXTAREA_SMALL,
        help_text="Required. If the cause persists, the next failing evidence opens a new "
        "incident.",
    )
