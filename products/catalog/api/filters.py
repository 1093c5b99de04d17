"""Query parameters of the catalog API.

ProductFilterSet parses and validates `q`, `domain`, `tag`, `status` and `sort`; the
filtering and ranking itself is products.catalog.selectors.product_search_explained, the
same call `/search/` makes, so the API and the search page return the same products in the
same order, with the same reasons and "did you mean".
"""

import django_filters
from django.db.models import QuerySet
from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field

from products.catalog.selectors import (
    MAX_QUERY_LENGTH,
    SORTS,
    CatalogFilters,
    SearchRanking,
    product_search_explained,
)
from products.choices import LifecycleStatus
from products.models import DataProduct


def _text_filter(description: str, **kwargs) -> django_filters.CharFilter:
    """A text parameter that is not a model field: typed and described for the schema."""
    schema = {"type": "string", "description": description}
    return extend_schema_field(schema)(django_filters.CharFilter(**kwargs))


class ProductFilterSet(django_filters.FilterSet):
    q = _text_filter(
        "Search text (name, summary, tags, domain, description, use case, column names and "
        "descriptions). Any word may match; products matching more words come first, then "
        "published before draft, deprecated and retired, then whole words before the start "
        "of a word before a corrected typo. Each result then says what matched "
        "(`search_matches`) and the response offers `did_you_mean` when a word matched "
        "nothing as typed.",
        max_length=MAX_QUERY_LENGTH,
    )
    domain = _text_filter("Domain slug, e.g. `sales`.")
    tag = _text_filter("Tag name, e.g. `finance`.")
    status = django_filters.ChoiceFilter(choices=LifecycleStatus.choices)
    sort = django_filters.ChoiceFilter(
        choices=SORTS,
        help_text="`relevance` (the default with `q`), `name` (the default without) or "
        "`updated` (recently updated first).",
    )

    class Meta:
        model = DataProduct
        fields: list[str] = []

    def catalog_filters(self) -> CatalogFilters:
        """The validated parameters as the selector's filters (after is_valid())."""
        data = self.form.cleaned_data
        return CatalogFilters(
            q=data.get("q") or "",
            domain=data.get("domain") or "",
            tag=data.get("tag") or "",
            status=data.get("status") or "",
            sort=data.get("sort") or "",
        )


class CatalogSearchFilterBackend(DjangoFilterBackend):
    """Validates the view's FilterSet (400 with a message per parameter) and answers with
    product_search_explained: the products the user may see that match, most relevant
    first, and why each matched.

    The selector starts from DataProduct.objects.visible_to(user) itself, so the queryset
    passed in is not narrowed further; views using this backend list products."""

    def search(self, request, queryset, view) -> tuple[QuerySet, SearchRanking]:
        filterset = self.get_filterset(request, queryset, view)
        if not filterset.is_valid():
            raise utils.translate_validation(filterset.errors)
        return product_search_explained(user=request.user, filters=filterset.catalog_filters())

    def filter_queryset(self, request, queryset, view):
        return self.search(request, queryset, view)[0]
