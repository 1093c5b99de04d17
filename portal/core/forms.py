"""Forms of the site shell, and the one way pages turn a service's ValidationError into
messages on a form."""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from products.catalog.selectors import MAX_QUERY_LENGTH, CatalogFilters
from products.choices import LifecycleStatus


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Attach a service's ValidationError to the form: messages about a field the form
    shows go beside that field, the rest at the top of the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        target = field if field in form.fields else None
        if field == NON_FIELD_ERRORS:
            target = None
        form.add_error(target, messages)


class CatalogSearchForm(forms.Form):
    """The query string of the home and search pages. Unknown values are ignored rather
    than refused: a stale bookmark should still show a catalog."""

    q = forms.CharField(required=False, label="Search the catalog")
    domain = forms.SlugField(required=False)
    tag = forms.SlugField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "Any"), *LifecycleStatus.choices])

    def clean_q(self) -> str:
        return " ".join(self.cleaned_data["q"].split())[:MAX_QUERY_LENGTH]

    def filters(self) -> CatalogFilters:
        self.is_valid()  # invalid fields are left out of cleaned_data, valid ones kept
        data = self.cleaned_data
        return CatalogFilters(
            q=data.get("q") or "",
            domain=data.get("domain") or "",
            tag=data.get("tag") or "",
            status=data.get("status") or "",
        )
