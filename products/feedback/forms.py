"""Forms of the feedback, announcement and follow pages. They parse input; the services
(products.feedback.services.feedback, .announcements) decide what is allowed and valid, and their
ValidationErrors are attached with portal.core.forms.add_service_errors. Text lengths and
required texts are checked by the services, so a page and the API give the same
message."""

from django import forms

from products.choices import (
    FEEDBACK_TRANSITIONS,
    UNRESOLVED_FEEDBACK_STATUSES,
    AnnouncementKind,
    FeedbackKind,
    FeedbackStatus,
)
from products.models import DataProduct, FeedbackThread, Incident

BODY_HELP = "Markdown: **bold**, _italic_, `code`, lists and links. Up to 20,000 characters."


class FeedbackThreadForm(forms.Form):
    kind = forms.ChoiceField(
        label="What is it?",
        choices=FeedbackKind.choices,
        widget=forms.RadioSelect,
        initial=FeedbackKind.QUESTION,
        error_messages={"required": "Choose question, issue, request or praise."},
    )
    title = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"maxlength": 200}),
        help_text="One line, for example: Why do refunds show as negative amounts?",
    )
    body = forms.CharField(
        label="Details",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=BODY_HELP,
    )
    incident = forms.ModelChoiceField(
        label="Linked incident",
        queryset=Incident.objects.none(),
        required=False,
        empty_label="No incident",
        help_text="For an issue the team traced to an incident.",
    )

    def __init__(self, *args, incidents=None, **kwargs):
        super().__init__(*args, **kwargs)
        if incidents is None:
            del self.fields["incident"]  # only the product's editors link incidents
        else:
            self.fields["incident"].queryset = incidents


class FeedbackReplyForm(forms.Form):
    body = forms.CharField(
        label="Your reply",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=BODY_HELP,
    )


class FeedbackStatusForm(forms.Form):
    status = forms.ChoiceField(label="New status", choices=())
    note = forms.CharField(
        label="Note",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required to resolve or decline: the author reads it.",
    )

    def __init__(self, *args, thread: FeedbackThread, editor: bool, author: bool, **kwargs):
        super().__init__(*args, **kwargs)
        choices = []
        if editor:
            choices = [
                (status.value, status.label)
                for status in FEEDBACK_TRANSITIONS[FeedbackStatus(thread.status)]
            ]
        if author and thread.status in UNRESOLVED_FEEDBACK_STATUSES:
            choices.append((FeedbackStatus.WITHDRAWN.value, "Withdrawn (no answer needed)"))
        self.fields["status"].choices = [
            (value, "Reopen" if value == FeedbackStatus.OPEN else label) for value, label in choices
        ]

    @property
    def has_choices(self) -> bool:
        return bool(self.fields["status"].choices)


class FeedbackIncidentForm(forms.Form):
    incident = forms.ModelChoiceField(
        label="Linked incident",
        queryset=Incident.objects.none(),
        required=False,
        empty_label="No incident",
    )

    def __init__(self, *args, incidents, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["incident"].queryset = incidents


class FeedbackFilterForm(forms.Form):
    """The query string of the feedback lists. Unknown values are ignored, not refused: a
    stale bookmark still shows a list."""

    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *FeedbackKind.choices])
    status = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any status"),
            ("unresolved", "Waiting (open or acknowledged)"),
            ("closed", "Closed"),
            *FeedbackStatus.choices,
        ],
    )

    def values(self) -> dict[str, str]:
        self.is_valid()
        return {name: self.cleaned_data.get(name) or "" for name in ("kind", "status")}


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class AnnouncementForm(forms.Form):
    kind = forms.ChoiceField(
        label="Kind",
        choices=AnnouncementKind.choices,
        widget=forms.RadioSelect,
        initial=AnnouncementKind.INFO,
    )
    title = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"maxlength": 200}),
        help_text="One line, for example: Nightly load moves to 04:00 UTC from 1 March.",
    )
    body = forms.CharField(
        label="Details",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=BODY_HELP,
    )
    starts_at = forms.DateTimeField(
        label="Show from (UTC)",
        required=False,
        widget=DateTimeLocalInput(),
        help_text="Blank: now.",
    )
    ends_at = forms.DateTimeField(
        label="Show until (UTC)",
        required=False,
        widget=DateTimeLocalInput(),
        help_text="Blank: until you end it.",
    )
    replacement = forms.ModelChoiceField(
        label="Replacement product",
        queryset=DataProduct.objects.none(),
        required=False,
        empty_label="Choose the product consumers should move to",
        help_text="Deprecations only: a published product, linked from the banner.",
    )

    def __init__(self, *args, replacements, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["replacement"].queryset = replacements
        self.fields["replacement"].label_from_instance = lambda p: f"{p.name} ({p.key})"

    def service_fields(self) -> dict:
        return {
            name: self.cleaned_data.get(name)
            for name in ("kind", "title", "body", "starts_at", "ends_at", "replacement")
        }
