"""Forms of the access pages. They parse input; the services hold the rules."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from sharing.access.filters import filter_builder_attrs

ALL_COLUMNS, SOME_COLUMNS = "all", "some"
ROW_FILTER_HELP = (
    "Optional: only rows meeting every condition. Without the filter builder, write a JSON "
    'list such as [{"column": "country", "op": "in", "value": ["BE", "NL"]}].'
)
NO_COLUMN = "Tick at least one column."


def _column_choices(names: list[str]) -> list[tuple[str, str]]:
    return [(name, name) for name in names]


def _row_filter_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        label="Only rows where",
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": '[{"column": "country", "op": "=", "value": "BE"}]'}
        ),
        help_text=ROW_FILTER_HELP,
    )


def _with_builder(form: forms.Form, column_types: dict[str, str] | None, values_url: str) -> None:
    """Offer the filter builder on the form's row filter (the JSON field stays the input)."""
    if column_types is not None:
        filter_builder_attrs(
            form.fields["row_filter"].widget.attrs, column_types, values_url=values_url
        )


class AccessRequestForm(forms.Form):
    purpose = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What you will use the data for. The domain's owners read this.",
    )
    column_choice = forms.ChoiceField(
        label="Columns",
        required=False,
        widget=forms.RadioSelect,
        choices=[
            (ALL_COLUMNS, "All columns, including ones added later"),
            (SOME_COLUMNS, "Only the columns I tick below"),
        ],
        initial=ALL_COLUMNS,
    )
    columns = forms.MultipleChoiceField(
        label="Columns I need",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Asking for fewer columns, and none restricted, is decided faster.",
    )
    duration_days = forms.IntegerField(label="Duration (days)", min_value=1)

    def __init__(self, *args, columns: list[str], max_days: int, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("duration_days", max_days)
        super().__init__(*args, **kwargs)
        self.all_columns = columns
        self.fields["columns"].choices = _column_choices(columns)
        self.fields["duration_days"].help_text = f"At most {max_days} days."

    def clean(self):
        data = super().clean()
        chosen = data.get("columns") or []
        # Without the choice (an older page, a script): the ticked columns say it.
        choice = data.get("column_choice") or (SOME_COLUMNS if chosen else "")
        if self.all_columns and choice != ALL_COLUMNS and not chosen:
            self.add_error("columns", "Tick the columns you need, or choose “All columns” above.")
        data["column_choice"] = choice
        return data

    def service_kwargs(self) -> dict:
        chosen = self.cleaned_data["columns"]
        everything = self.cleaned_data["column_choice"] == ALL_COLUMNS or set(chosen) >= set(
            self.all_columns
        )
        return {
            "purpose": self.cleaned_data["purpose"],
            # All columns: [] (including ones added later).
            "columns": [] if everything else chosen,
            "duration_days": self.cleaned_data["duration_days"],
        }


class AccessApproveForm(forms.Form):
    columns = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Untick columns to narrow the grant.",
    )
    row_filter = _row_filter_field()
    duration_days = forms.IntegerField(label="Duration (days)", min_value=1, required=False)
    reason = forms.CharField(
        required=False,
        label="Note to the requester",
        help_text="Optional when you approve; when you deny, say why here.",
    )

    def __init__(
        self,
        *args,
        columns: list[str],
        max_days: int,
        column_types: dict[str, str] | None = None,
        values_url: str = "",
        **kwargs,
    ):
        kwargs.setdefault("initial", {}).setdefault("columns", columns)
        kwargs["initial"].setdefault("duration_days", max_days)
        super().__init__(*args, **kwargs)
        self.all_columns = columns
        self.fields["columns"].choices = _column_choices(columns)
        self.fields["duration_days"].help_text = f"At most {max_days} days (what was asked)."
        _with_builder(self, column_types, values_url)

    def clean_columns(self) -> list[str]:
        chosen = self.cleaned_data["columns"]
        if self.all_columns and not chosen:
            raise forms.ValidationError(f"{NO_COLUMN} To refuse the request, deny it.")
        return chosen

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
        help_text="Leave every column ticked to grant all of them (and columns added later).",
    )
    row_filter = _row_filter_field()
    duration_days = forms.IntegerField(label="Duration (days)", min_value=1)
    reason = forms.CharField()

    def __init__(
        self,
        *args,
        columns: list[str],
        max_days: int,
        column_types: dict[str, str] | None = None,
        values_url: str = "",
        **kwargs,
    ):
        kwargs.setdefault("initial", {}).setdefault("columns", columns)
        kwargs["initial"].setdefault("duration_days", max_days)
        super().__init__(*args, **kwargs)
        self.all_columns = columns
        self.fields["columns"].choices = _column_choices(columns)
        _with_builder(self, column_types, values_url)

    def clean_columns(self) -> list[str]:
        chosen = self.cleaned_data["columns"]
        if self.all_columns and not chosen:
            raise forms.ValidationError(NO_COLUMN)
        return chosen

    def clean_username(self):
        """The person named, or None when no one is."""
        username = self.cleaned_data["username"].strip()
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError("No user with this username.")
        return user

    def clean_group(self):
        """The team named, or None when none is."""
        name = self.cleaned_data["group"].strip()
        if not name:
            return None
        group = Group.objects.filter(name=name).first()
        if group is None:
            raise forms.ValidationError("No group with this name.")
        return group
