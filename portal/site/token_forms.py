"""The form of the API tokens page: a name and a lifetime from the offered choices."""

from __future__ import annotations

from datetime import timedelta

from django import forms

from portal.api.tokens import TOKEN_NAME_MAX_LENGTH, token_lifetime_choices

DEFAULT_LIFETIME_DAYS = 30


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=TOKEN_NAME_MAX_LENGTH,
        label="Name",
        help_text="What uses the token, so you recognise it later: "
        '"Churn notebook", "Nightly revenue job".',
    )
    lifetime_days = forms.TypedChoiceField(
        coerce=int,
        label="Expires after",
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose one of the lifetimes offered."},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = token_lifetime_choices()
        field = self.fields["lifetime_days"]
        field.choices = [(days, f"{days} days") for days in choices]
        field.initial = DEFAULT_LIFETIME_DAYS if DEFAULT_LIFETIME_DAYS in choices else choices[0]
        field.help_text = (
            "The token stops working then; create a new one when it does. "
            f"At most {choices[-1]} days."
        )

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the token a name.")
        return name

    def lifetime(self) -> timedelta:
        return timedelta(days=self.cleaned_data["lifetime_days"])
