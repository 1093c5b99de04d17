"""Forms of the Delta Sharing pages. They parse input; `sharing.delta_sharing.services`
holds the rules (the API calls the same services)."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

from sharing.access.filters import columns_as_written
from sharing.delta_sharing.services import NAME_RULE, RECIPIENT_DEFAULT_DAYS, RECIPIENT_MAX_DAYS

_COLUMN_SEPARATORS = re.compile(r"\r?\n|,")
FILTER_PLACEHOLDER = '[{"column": "country", "op": "=", "value": "BE"}]'


class DeltaShareForm(forms.Form):
    name = forms.CharField(max_length=100, help_text=NAME_RULE)
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Who it is for and why: only people managing the share see it.",
    )


class DeltaShareTableForm(forms.Form):
    port = forms.ChoiceField(
        label="Product and port",
        help_text="Products whose access you manage (their domain's owners and stewards).",
    )
    schema = forms.CharField(
        required=False, max_length=100, help_text="Default: default. " + NAME_RULE
    )
    name = forms.CharField(
        required=False,
        max_length=100,
        label="Table name",
        help_text="Default: the product's slug. Recipients read share.schema.table.",
    )
    columns = forms.CharField(
        required=False,
        strip=False,  # names verbatim: see service_kwargs
        help_text="Comma-separated column names; empty shares every column the share's "
        "creator may read (confidential ones masked unless their access names them).",
    )
    row_filter = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": FILTER_PLACEHOLDER}),
        help_text="Optional: only rows matching every clause.",
    )

    def __init__(self, *args, ports, **kwargs):
        kwargs.setdefault("prefix", "table")  # unique ids beside the recipient form
        super().__init__(*args, **kwargs)
        self.ports = {str(port.pk): port for port in ports}
        self.fields["port"].choices = [
            (str(port.pk), f"{port.product.key} · {port.name} ({port.slug})") for port in ports
        ]

    def clean_port(self):
        return self.ports[self.cleaned_data["port"]]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        port = data["port"]
        known = set(port.columns.values_list("name", flat=True))
        return {
            "product": port.product,
            "port": port,
            "schema": data["schema"],
            "name": data["name"],
            # Split on commas and line breaks; each name as written when the port has a
            # column so named, else without the spaces around it ("a, b" is a and b).
            "columns": columns_as_written(_COLUMN_SEPARATORS.split(data["columns"]), known),
            "row_filter": data["row_filter"] or None,
        }


class DeltaRecipientForm(forms.Form):
    name = forms.CharField(
        max_length=200, help_text="Who reads: a person or an organisation, for your records."
    )
    expires_on = forms.DateField(
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=f"The token stops working at the start of this day. At most "
        f"{RECIPIENT_MAX_DAYS} days from today.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "recipient")  # unique ids beside the table form
        kwargs.setdefault("initial", {}).setdefault(
            "expires_on", timezone.localdate() + timedelta(days=RECIPIENT_DEFAULT_DAYS)
        )
        super().__init__(*args, **kwargs)

    def service_kwargs(self) -> dict:
        day = self.cleaned_data["expires_on"]
        return {
            "name": self.cleaned_data["name"],
            "expires_at": timezone.make_aware(datetime.combine(day, time.min)),
        }
