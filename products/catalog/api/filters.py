"""Query parameters of the catalog API.

ProductFilterSet parses and validates `q`, `domain`, `tag` and `status`; the filtering and
ranking itself is products.catalog.selectors.product_search, the same call `/search/` makes, so
the API and the search page return the same products in the same order.
"""

import django_filters
from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field

from products.catalog.selectors import MAX_QUERY_LENGTH, CatalogFilters, product_search
from products.choices import LifecycleStatus
from products.models import DataProduct


def _text_filter(description: str, **kwargs) -> django_filters.CharFilter:
    """A text parameter that is not a model field: typed and described for the schema."""
    schema = {"type": "string", "description": description}
    return extend_schema_field(schema)(django_filters.CharFilter(**kwargs))


class ProductFilterSet(django_filters.FilterSet):
    q = _text_filter(
        "Search text (name, summary, tags, description, column names and descriptions). "
        "With `q`, results are ordered by relevance.",
        max_length=MAX_QUERY_LENGTH,
    )
    domain = _text_filter("Domain slug, e.g. `sales`.")
    tag = _text_filter("Tag name, e.g. `finance`.")
    status = django_filters.ChoiceFilter(choices=LifecycleStatus.choices)

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
        )


class CatalogSearchFilterBackend(DjangoFilterBackend):
    """Validates the view's FilterSet (400 with a message per parameter) and answers with
    product_search: the products the user may see that match, most relevant first.

    product_search starts from DataProduct.objects.visible_to(user) itself, so the
    queryset passed in is not narrowed further; views using this backend list products."""

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if not filterset.is_valid():
            raise utils.translate_validation(filterset.errors)
        return product_search(user=request.user, filters=filterset.catalog_filters())
