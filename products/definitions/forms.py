"""Forms of the glossary and metric pages. They parse input; the services in
products.definitions.services.glossary and products.definitions.services.metrics decide
what is allowed and save it (their ValidationErrors are attached with
portal.core.forms.add_service_errors)."""

from __future__ import annotations

import json

from django import forms

from portal.core.safe_json import JSONRefused, loads_limited
from products.choices import MetricAggregation, MetricGrain, TermStatus
from products.definitions.services.glossary import MAX_NOTE_LENGTH
from sharing.access.filters import filter_builder_attrs

NOTE_HELP = "Optional: why you changed it. Shown in the term's history."
FILTERS_HELP = (
    'A JSON list of conditions that must all hold, e.g. [{"column": "status", "op": "!=", '
    '"value": "cancelled"}]. Operators: = != < <= > >= in, not in (a list), is null, '
    "is not null (no value)."
)


class TermSearchForm(forms.Form):
    q = forms.CharField(required=False, label="Search the glossary")
    domain = forms.SlugField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *TermStatus.choices])

    def clean_q(self) -> str:
        return " ".join(self.cleaned_data["q"].split())[:200]


class TermForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        help_text="As people say it, e.g. “Net revenue”.",
        error_messages={"required": "Name the term, as people say it."},
    )
    definition = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Markdown. What it means, how it is counted, what it does not include.",
        error_messages={
            "required": "Write the definition: what the term means and how it is counted."
        },
    )
    synonyms = forms.CharField(
        required=False,
        help_text="Comma-separated other names people use, e.g. turnover, sales.",
    )
    note = forms.CharField(
        label="Change note", max_length=MAX_NOTE_LENGTH, required=False, help_text=NOTE_HELP
    )

    def __init__(self, *args, domains=None, **kwargs):
        super().__init__(*args, **kwargs)
        if domains is not None:
            self.fields = {
                "domain": forms.ModelChoiceField(
                    queryset=domains,
                    empty_label=None,
                    help_text="The domain that owns the term: its owners and stewards approve it.",
                ),
                **self.fields,
            }

    def clean_synonyms(self) -> list[str]:
        return [part.strip() for part in self.cleaned_data["synonyms"].split(",") if part.strip()]


class TermNoteForm(forms.Form):
    note = forms.CharField(max_length=MAX_NOTE_LENGTH, required=False)


class TermLinkForm(forms.Form):
    """Link (or unlink) one term to a product or one of its columns."""

    term = forms.ModelChoiceField(queryset=None, empty_label="Choose a term…")
    action = forms.ChoiceField(choices=[("link", "Link"), ("unlink", "Unlink")], initial="link")

    def __init__(self, *args, terms, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["term"].queryset = terms
        self.fields["term"].label_from_instance = lambda term: (
            f"{term.name} ({term.domain.name}{', draft' if term.status == 'draft' else ''})"
        )
        self.fields["action"].widget = forms.HiddenInput()


def _json_list(text: str, *, what: str):
    text = (text or "").strip()
    if not text:
        return []
    try:
        value = loads_limited(text, what=what)
    except JSONRefused as exc:
        if isinstance(exc.__cause__, json.JSONDecodeError):
            raise forms.ValidationError(f"{what} are not valid JSON: {exc.__cause__.msg}.") from exc
        raise forms.ValidationError(str(exc)) from exc
    return value


class MetricPortForm(forms.Form):
    """Step 1 of defining a metric: the output port it computes over."""

    port = forms.ModelChoiceField(
        queryset=None,
        label="Output port",
        empty_label="Choose a product's output port…",
        help_text="Products of the domains you own or steward.",
    )

    def __init__(self, *args, ports, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["port"].queryset = ports
        self.fields["port"].label_from_instance = lambda port: (
            f"{port.product.name} ({port.product.key}) / {port.name}"
        )


class MetricForm(forms.Form):
    """Step 2: the metric on the chosen port; column fields list the port's columns."""

    key = forms.CharField(max_length=160, help_text="<domain>.<name>, e.g. sales.revenue.")
    name = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Markdown. What it measures and how to read it.",
    )
    aggregation = forms.ChoiceField(choices=MetricAggregation.choices, label="Aggregation")
    column = forms.ChoiceField(required=False, help_text="Blank with Count: count rows.")
    denominator_aggregation = forms.ChoiceField(
        required=False,
        label="Divided by (optional)",
        choices=[("", "Nothing: not a ratio"), *MetricAggregation.choices],
        help_text="A ratio: the measure divided by this one (no value where it is 0).",
    )
    denominator_column = forms.ChoiceField(required=False, label="Denominator column")
    filters = forms.CharField(
        required=False,
        label="Fixed filters",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text=FILTERS_HELP,
    )
    dimensions = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Columns people may group and filter the metric by.",
    )
    time_column = forms.ChoiceField(
        required=False,
        help_text="A date or timestamp column: the metric then has day, week and month grains.",
    )

    def __init__(
        self,
        *args,
        columns: list[str],
        column_types: dict[str, str] | None = None,
        values_url: str = "",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if column_types is not None:
            filter_builder_attrs(
                self.fields["filters"].widget.attrs, column_types, values_url=values_url
            )
        optional = [("", "—"), *[(name, name) for name in columns]]
        for name in ("column", "denominator_column", "time_column"):
            self.fields[name].choices = optional
        self.fields["dimensions"].choices = [(name, name) for name in columns]

    def clean_filters(self):
        return _json_list(self.cleaned_data["filters"], what="The filters")


class MetricQueryForm(forms.Form):
    """The query string of a metric page (GET): what to group by, which period."""

    dimensions = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Group by"
    )
    grain = forms.ChoiceField(required=False, label="Per")
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    filters = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        label="Only rows where",
        help_text="Conditions on the metric's dimensions, all of which must hold. Without the "
        'filter builder, a JSON list, e.g. [{"column": "country", "op": "in", "value": ["BE", '
        '"NL"]}].',
    )

    def __init__(
        self,
        *args,
        metric,
        column_types: dict[str, str] | None = None,
        values_url: str = "",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.fields["dimensions"].choices = [(name, name) for name in metric.dimensions]
        if column_types is not None and metric.dimensions:
            # The builder offers the dimensions: the columns a reader may filter by.
            dimension_types = {name: column_types.get(name, "") for name in metric.dimensions}
            filter_builder_attrs(
                self.fields["filters"].widget.attrs, dimension_types, values_url=values_url
            )
        if metric.time_column:
            self.fields["grain"].choices = [("", "Whole period"), *MetricGrain.choices]
        else:
            for name in ("grain", "start", "end"):
                del self.fields[name]
        if not metric.dimensions and not metric.time_column:
            del self.fields["filters"]
        if not metric.dimensions:
            del self.fields["dimensions"]
