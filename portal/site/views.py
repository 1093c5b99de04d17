"""The site shell: catalog home and search, "My products", the work inbox."""

from urllib.parse import urlencode

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views import View
from django.views.generic import TemplateView

from portal.site.forms import CatalogSearchForm
from portal.site.work import work_by_product, work_count, work_inbox
from products.catalog.permissions import managed_domains
from products.catalog.search import Field, FieldMatch, Quality
from products.catalog.selectors import (
    SEARCH_WINDOW,
    SORT_NAME,
    SORT_RELEVANCE,
    SORTS,
    CatalogFilters,
    catalog_search,
    products_managed_by,
)
from products.definitions.selectors import TermFilters, term_search
from products.trust.services.incidents import products_with_open_incidents
from products.trust.services.trust_score import trust_scores_latest_for

PAGE_SIZE = 20
FACET_SHOWN = 8  # values shown per facet before "Show N more"
FACETS = (("domain", "Domain"), ("tag", "Tag"), ("status", "Status"))
GLOSSARY_SHOWN = 5  # glossary terms shown above the results of a search
MATCHES_SHOWN = 4  # reasons shown under a result ("Matched name · column churn_score")


def _query_string(filters: CatalogFilters, **changes: str) -> str:
    """`?…` for the catalog with the given filters changed (an empty value removes one).
    The page number is dropped: new filters start on page one."""
    params = {"q": filters.q, "domain": filters.domain, "tag": filters.tag}
    params["status"] = filters.status
    params["sort"] = filters.sort
    params.update(changes)
    return "?" + urlencode({key: value for key, value in params.items() if value})


def _match_reasons(matches: tuple[FieldMatch, ...]) -> list[dict]:
    """Why a product matched, in words: one entry per field (the best word match there),
    e.g. {"where": "column", "detail": "churn_score", "note": ""} or a note saying the word
    matched the start of a word or a close spelling."""
    reasons: dict[tuple[str, str], dict] = {}
    for match in matches:
        key = (match.field, match.detail)
        if key in reasons:
            continue
        if match.quality == Quality.CLOSE:
            note = f"“{match.corrected_to}”, close to “{match.word}”"
        elif match.quality == Quality.PARTIAL:
            note = f"starts with “{match.word}”"
        else:
            note = ""
        where = "description of column" if match.field == Field.COLUMN_DESCRIPTION else match.field
        reasons[key] = {"where": where, "detail": match.detail, "note": note}
    return list(reasons.values())[:MATCHES_SHOWN]


class CatalogView(LoginRequiredMixin, TemplateView):
    """Home (`/`) and search (`/search/`): one page, ranked results and facet counts from
    the same selectors as the API's `q`, `domain`, `tag` and `status` filters."""

    template_name = "portal/catalog.html"
    is_home = False

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        form = CatalogSearchForm(self.request.GET)
        filters = form.filters()
        search = catalog_search(user=user, filters=filters)
        facets = search.facets
        page = Paginator(search.products, PAGE_SIZE).get_page(self.request.GET.get("page"))
        products = list(page.object_list)
        # Each result's trust badge and incident marker: two queries for the whole page.
        ids = [product.pk for product in products]
        scores = trust_scores_latest_for(ids)
        with_incidents = products_with_open_incidents(ids)
        for product in products:
            product.trust = scores.get(product.pk)
            product.has_open_incident = product.pk in with_incidents
            product.match_reasons = _match_reasons(search.matches.get(product.pk, ()))

        facet_groups = []
        for name, label in FACETS:
            current = getattr(filters, name)
            values = [
                {
                    **value,
                    "active": value["slug"] == current,
                    # A click on the active value removes it; on another, selects it.
                    "url": _query_string(
                        filters, **{name: "" if value["slug"] == current else value["slug"]}
                    ),
                }
                for value in facets[name]
            ]
            # Long lists show their most common values; the rest fold away, except an
            # active value, which always stays in sight.
            shown = [v for i, v in enumerate(values) if i < FACET_SHOWN or v["active"]]
            more = [v for i, v in enumerate(values) if i >= FACET_SHOWN and not v["active"]]
            facet_groups.append({"name": name, "label": label, "values": shown, "more": more})

        active_filters = [
            {
                "name": label,
                "value": getattr(filters, name),
                "remove_url": _query_string(filters, **{name: ""}),
            }
            for name, label in FACETS
            if getattr(filters, name)
        ]
        has_filters = bool(filters.q or active_filters)
        # A broad search ranks a bounded window of matches (SEARCH_WINDOW): its count is
        # then a lower bound, shown as "1,000+".
        count_is_lower_bound = bool(filters.q) and page.paginator.count >= SEARCH_WINDOW
        # Sorting: relevance only means something with search text.
        current_sort = filters.sort or (SORT_RELEVANCE if filters.q else SORT_NAME)
        sorts = [
            {
                "label": label,
                "active": value == current_sort,
                "url": _query_string(filters, sort=value),
            }
            for value, label in SORTS
            if filters.q or value != SORT_RELEVANCE
        ]
        context.update(
            form=form,
            sorts=sorts,
            corrections=search.corrections,
            suggestion=search.suggestion,
            suggestion_url=_query_string(filters, q=search.suggestion) if search.suggestion else "",
            filters=filters,
            page_obj=page,
            products=products,
            facet_groups=facet_groups,
            active_filters=active_filters,
            has_filters=has_filters,
            keep_query=_query_string(filters)[1:],
            is_home=self.is_home,
            count_is_lower_bound=count_is_lower_bound,
        )
        if filters.q:
            # Glossary terms matching the search, above the products (one query).
            context["glossary_terms"] = list(
                term_search(user=user, filters=TermFilters(q=filters.q))[:GLOSSARY_SHOWN]
            )
        if page.paginator.count == 0 and not has_filters:
            # An empty catalog: tell the people who can fill it how.
            context["can_create"] = managed_domains(user=user).exists()
        return context


class MyProductsView(LoginRequiredMixin, TemplateView):
    """The products of the domains the user belongs to, grouped by domain."""

    template_name = "portal/my_products.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        domains = list(managed_domains(user=user).order_by("name"))
        groups: dict[int, dict] = {}
        products = list(products_managed_by(user=user))
        # What waits on each product (pending requests, overdue threads, open incidents):
        # three queries for the whole page.
        work = work_by_product(product_ids=[product.pk for product in products])
        for product in products:
            product.work = work[product.pk]
            group = groups.setdefault(
                product.domain_id, {"domain": product.domain, "products": [], "can_create": False}
            )
            group["products"].append(product)
        for domain in domains:
            groups.setdefault(domain.pk, {"domain": domain, "products": []})["can_create"] = True
        context.update(
            groups=sorted(groups.values(), key=lambda group: group["domain"].name),
            managed_domains=domains,
        )
        return context


class WorkView(LoginRequiredMixin, TemplateView):
    """/my/work/: what waits on the user, grouped by kind, each item linking to where it
    is done (portal.site.work)."""

    template_name = "portal/work.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        groups = work_inbox(user=self.request.user)
        context.update(groups=groups, total=sum(group.count for group in groups))
        return context


class WorkBadgeView(LoginRequiredMixin, View):
    """The inbox's count in the top bar (an HTMX fragment, polled like the bell's)."""

    def get(self, request):
        count = work_count(user=request.user)
        return render(request, "portal/_work_badge.html", {"work_count": count})
