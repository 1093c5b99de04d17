"""Forms of the site shell: the catalog search of the home and search pages."""

from django import forms

from products.catalog.selectors import MAX_QUERY_LENGTH, SORTS, CatalogFilters
from products.choices import LifecycleStatus


class CatalogSearchForm(forms.Form):
    """The query string of the home and search pages. Unknown values are ignored rather
    than refused: a stale bookmark should still show a catalog."""

    q = forms.CharField(required=False, label="Search the catalog")
    domain = forms.SlugField(required=False)
    tag = forms.SlugField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "Any"), *LifecycleStatus.choices])
    sort = forms.ChoiceField(required=False, choices=SORTS)

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
            sort=data.get("sort") or "",
        )
