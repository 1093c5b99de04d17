"""Forms of the access pages. They parse input; the services hold the rules."""

from __future__ import annotations

from django import forms


def _column_choices(names: list[str]) -> list[tuple[str, str]]:
    return [(name, name) for name in names]


class AccessRequestForm(forms.Form):
    purpose = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What you will use the data for. The domain's owners read this.",
    )
    columns = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave every column ticked to ask for all of them.",
    )
    duration_days = forms.IntegerField(label="Duration (days)", min_value=1)

    def __init__(self, *args, columns: list[str], max_days: int, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("columns", columns)
        kwargs["initial"].setdefault("duration_days", max_days)
        super().__init__(*args, **kwargs)
        self.all_columns = columns
        self.fields["columns"].choices = _column_choices(columns)
        self.fields["duration_days"].help_text = f"At most {max_days} days."

    def service_kwargs(self) -> dict:
        chosen = self.cleaned_data["columns"]
        return {
            "purpose": self.cleaned_data["purpose"],
            # Every column ticked (or none): all columns, including ones added later.
            "columns": [] if set(chosen) >= set(self.all_columns) else chosen,
            "duration_days": self.cleaned_data["duration_days"],
        }


class AccessApproveForm(forms.Form):
    columns = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Untick columns to narrow the grant.",
    )
    row_filter = forms.CharField(
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": '[{"column": "country", "op": "=", "value": "BE"}]'}
        ),
        help_text="Optional: only rows matching every clause.",
    )
    duration_days = forms.IntegerField(label="Duration (days)", min_value=1, required=False)
    reason = forms.CharField(required=False, label="Note to the requester")

    def __init__(self, *args, columns: list[str], max_days: int, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("columns", columns)
        kwargs["initial"].setdefault("duration_days", max_days)
        super().__init__(*args, **kwargs)
        self.all_columns = columns
        self.fields["columns"].choices = _column_choices(columns)
        self.fields["duration_days"].help_text = f"At most {max_days} days (what was asked)."

    def service_kwargs(self) -> dict:
        chosen = self.cleaned_data["columns"]
        return {
            "columns": None if set(chosen) >= set(self.all_columns) else chosen,
            "row_filter": self.cleaned_data["row_filter"] or None,
            "duration_days": self.cleaned_data["duration_days"],
            "reason": self.cleaned_data["reason"],
        }


class ReasonForm(forms.Form):
    reason = forms.CharField()


class GrantForm(forms.Form):
    username = forms.CharField(required=False, label="User", help_text="A person's username…")
    group = forms.CharField(required=False, label="or team", help_text="…or a group's name.")
    columns = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave every column ticked to grant all of them.",
    )
    row_filter = forms.CharField(
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": '[{"column": "country", "op": "=", "value": "BE"}]'}
        ),
    )
    duration_days = forms.IntegerField(label="Duration (days)", min_value=1)
    reason = forms.CharField()

    def __init__(self, *args, columns: list[str], max_days: int, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("columns", columns)
        kwargs["initial"].setdefault("duration_days", max_days)
        super().__init__(*args, **kwargs)
        self.all_columns = columns
        self.fields["columns"].choices = _column_choices(columns)
