"""Forms of the pages of admins and domain managers: the grants across products (filters,
revoke selected, revoke all of a person) and the audit's filters. They parse input; the
services and selectors hold the rules."""

from __future__ import annotations

from django import forms

from sharing.access.admin_selectors import NEVER_READ, GrantFilters, person_by_login
from sharing.access.audit_selectors import AuditCursor, AuditFilters
from sharing.choices import AuditAction, Channel

EXPIRING_CHOICES = [("", "Any time"), ("7", "Within 7 days"), ("30", "Within 30 days")]
UNUSED_CHOICES = [
    ("", "Any"),
    ("30", "Not read for 30 days"),
    ("60", "Not read for 60 days"),
    ("90", "Not read for 90 days"),
    (NEVER_READ, "Never read"),
]


class GrantFilterForm(forms.Form):
    """The grants page's query string; invalid values are left out rather than refused."""

    product = forms.CharField(
        required=False, label="Product", widget=forms.TextInput(attrs={"placeholder": "Orders"})
    )
    person = forms.CharField(
        required=False,
        label="Person or team",
        widget=forms.TextInput(attrs={"placeholder": "Name, username or e-mail"}),
    )
    expiring = forms.ChoiceField(required=False, label="Ends", choices=EXPIRING_CHOICES)
    unused = forms.ChoiceField(required=False, label="Use", choices=UNUSED_CHOICES)

    def filters(self) -> GrantFilters:
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        expiring = data.get("expiring") or ""
        return GrantFilters(
            product=(data.get("product") or "").strip(),
            person=(data.get("person") or "").strip(),
            expiring_days=int(expiring) if expiring else None,
            unused=data.get("unused") or "",
        )


class GrantsRevokeForm(forms.Form):
    """Revoke the grants ticked on the page, with one reason."""

    grants = forms.TypedMultipleChoiceField(
        coerce=int,
        error_messages={"required": "Tick at least one grant to revoke."},
    )
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        error_messages={
            "required": "Give a reason: it is kept with each revoked grant and in the audit."
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any whole number parses; which grants a person may name is the page's scope.
        raw = self.data.getlist("grants") if hasattr(self.data, "getlist") else []
        self.fields["grants"].choices = [(value, value) for value in raw if value.isdigit()]
        self.fields["grants"].error_messages["invalid_choice"] = (
            "Pick grants from the list: %(value)s is not one."
        )


class PersonRevokeForm(forms.Form):
    """Revoke everything a person holds: who (a username or an e-mail) and why."""

    person = forms.CharField(
        label="Person",
        help_text="Their username or e-mail.",
        error_messages={"required": "Say whose access to revoke."},
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=500,
        help_text="Required to revoke; kept with each grant and in the audit.",
    )

    def clean_person(self):
        person = person_by_login(self.cleaned_data["person"])
        if person is None:
            raise forms.ValidationError(
                "No one has this username or e-mail. Check the spelling, or find them with "
                "the person filter above."
            )
        return person


class AuditFilterForm(forms.Form):
    """The audit's query string (page, CSV export and API)."""

    product = forms.CharField(
        required=False, label="Product", help_text="Part of its name or key, any case."
    )
    person = forms.CharField(
        required=False, label="Person", help_text="Part of a name, username or e-mail."
    )
    action = forms.ChoiceField(required=False, choices=[("", "Any"), *AuditAction.choices])
    channel = forms.ChoiceField(required=False, choices=[("", "Any"), *Channel.choices])
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        data = super().clean()
        # `user`: the parameter's name before people could be found by part of a name.
        if not data.get("person") and self.data.get("user"):
            data["person"] = str(self.data.get("user")).strip()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date comes before the start date.")
        return data

    def filters(self) -> AuditFilters:
        self.is_valid()
        data = self.cleaned_data
        return AuditFilters(
            product=(data.get("product") or "").strip(),
            person=(data.get("person") or "").strip(),
            action=data.get("action") or "",
            channel=data.get("channel") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )


def audit_cursors(query) -> tuple[AuditCursor | None, AuditCursor | None]:
    """The page asked for: (after, before) cursors from the query string; a mangled one
    is None (the newest page)."""
    after = AuditCursor.decode(query.get("after", "")) if query.get("after") else None
    before = AuditCursor.decode(query.get("before", "")) if query.get("before") else None
    return after, None if after else before
