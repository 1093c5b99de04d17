"""The webhook subscription form: parses what a person typed; the rules (which types,
which targets, which products) are the service's, shown beside the fields."""

from django import forms

from products.models import Domain
from sharing.webhooks.selectors import event_type_groups


def event_type_choices() -> list[tuple[str, str]]:
    choices: list[tuple[str, str]] = []
    for group, words, types in event_type_groups():
        choices.append((f"portal.{group}.*", f"Every {words} event"))
        choices.extend(types)
    return choices


class WebhookSubscriptionForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="What receives the events, in a few words.")
    target_url = forms.CharField(
        label="Target URL",
        max_length=500,
        help_text="An https:// address the portal POSTs each event to.",
    )
    event_types = forms.MultipleChoiceField(
        label="Events", choices=event_type_choices, widget=forms.CheckboxSelectMultiple
    )
    product = forms.CharField(
        required=False,
        max_length=200,
        help_text="Only this product's events: its key, such as sales.orders (empty: all).",
    )
    domain = forms.ChoiceField(required=False, help_text="Only this domain's events.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["domain"].choices = [("", "Every domain")] + list(
            Domain.objects.order_by("name").values_list("slug", "name")
        )
