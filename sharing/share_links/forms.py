"""The "Share" form of a product's Data tab. It parses input; share_link_create holds
the rules (and answers bad input per field)."""

from __future__ import annotations

from django import forms

from sharing.access.filters import filter_builder_attrs
from sharing.choices import FILE_FORMATS, DataFormat
from sharing.share_links.services import DEFAULT_DAYS, MAX_DAYS, NOTE_MAX_CHARS

FILTER_PLACEHOLDER = '[{"column": "country", "op": "=", "value": "BE"}]'


class ShareLinkForm(forms.Form):
    columns = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The columns the link serves, among those you may read.",
    )
    row_filter = forms.CharField(
        required=False,
        label="Only rows where",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": FILTER_PLACEHOLDER}),
        help_text="Optional: only rows meeting every condition. Your own row filter always "
        "applies as well. Without the filter builder, write a JSON list of clauses.",
    )
    format = forms.ChoiceField(
        choices=[(value, DataFormat(value).label) for value in FILE_FORMATS],
        initial=DataFormat.CSV,
        widget=forms.RadioSelect,
    )
    neutralise_formulas = forms.BooleanField(
        required=False,
        label="Neutralise formulas (CSV): put a ' in front of text cells starting with "
        "= + - @, a tab or a carriage return, so a spreadsheet shows them instead of "
        "running them",
    )
    expires_in_days = forms.IntegerField(
        label="Expires after (days)",
        initial=DEFAULT_DAYS,
        widget=forms.NumberInput(attrs={"min": 1, "max": MAX_DAYS}),
        help_text=f"From 1 to {MAX_DAYS} days.",
    )
    max_downloads = forms.IntegerField(
        required=False,
        label="Download limit",
        widget=forms.NumberInput(attrs={"min": 1}),
        help_text="Optional: the link stops working after this many downloads.",
    )
    note = forms.CharField(
        required=False,
        label="Note for the recipient",
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": NOTE_MAX_CHARS}),
        help_text=f"Shown on the link's page, as plain text (at most {NOTE_MAX_CHARS} characters).",
    )

    def __init__(
        self,
        *args,
        columns: list[str],
        export_file: bool = False,
        column_types: dict[str, str] | None = None,
        values_url: str = "",
        **kwargs,
    ):
        kwargs.setdefault("initial", {}).setdefault("columns", columns)
        super().__init__(*args, **kwargs)
        if column_types is not None and not export_file:
            filter_builder_attrs(
                self.fields["row_filter"].widget.attrs, column_types, values_url=values_url
            )
        self.all_columns = columns
        self.fields["columns"].choices = [(name, name) for name in columns]
        self.fields["columns"].required = bool(columns)
        self.fields["columns"].error_messages["required"] = "Tick at least one column to share."
        if export_file:
            # An export file is shared as it was written.
            for name in ("columns", "row_filter", "format", "neutralise_formulas"):
                del self.fields[name]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {
            "expires_in_days": data["expires_in_days"],
            "max_downloads": data["max_downloads"],
            "note": data["note"],
        }
        if "columns" in self.fields:
            kwargs.update(
                columns=data["columns"],
                row_filter=data["row_filter"] or None,
                format=data["format"],
                neutralise_formulas=data["neutralise_formulas"],
            )
        return kwargs
