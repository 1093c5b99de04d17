"""Pages of the glossary and the metrics: lists with search, a term's page (definition,
where it is used, history, approval), the term form, linking terms to products and
columns, a metric's page (its values as a chart and a table), the metric form.

Views parse input, call a selector or a service, and render. A term or metric one may not
see is a 404 like a missing one; a refused change is a 403 (services raise it).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from portal.core.forms import add_service_errors
from products.catalog.permissions import can_edit_product, managed_domains
from products.catalog.scope import product_page, product_page_port
from products.choices import MetricGrain, TermStatus
from products.definitions.charts import metric_figure
from products.definitions.forms import (
    MetricForm,
    MetricPortForm,
    MetricQueryForm,
    TermForm,
    TermLinkForm,
    TermNoteForm,
    TermSearchForm,
)
from products.definitions.selectors import (
    TermFilters,
    metric_get_visible,
    metric_search,
    term_get_visible,
    term_search,
    term_usage,
    terms_linkable,
    terms_of_product,
)
from products.definitions.services.glossary import (
    can_approve_term,
    can_edit_term,
    term_create,
    term_domains_for,
    term_link_column,
    term_link_product,
    term_status_change,
    term_unlink_column,
    term_unlink_product,
    term_update,
)
from products.definitions.services.metrics import (
    MetricRefused,
    metric_create,
    metric_evaluate,
    port_column_types,
)
from products.models import Column, Domain, GlossaryTerm, Metric, OutputPort
from sharing.access.decision import can_share
from sharing.access.filters import filter_phrases
from sharing.choices import Channel

PAGE_SIZE = 25
TABLE_ROWS = 1000  # rows of a metric's values shown in its page's table


def _visible_term(request, domain_slug: str, term_slug: str) -> GlossaryTerm:
    try:
        return term_get_visible(user=request.user, domain_slug=domain_slug, term_slug=term_slug)
    except GlossaryTerm.DoesNotExist:
        raise Http404("No such term, or you may not see it.") from None


# --- glossary ------------------------------------------------------------------------------


class TermListView(LoginRequiredMixin, TemplateView):
    """The glossary: every term one may see, searchable by name, synonym and definition."""

    template_name = "products/term_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        form = TermSearchForm(self.request.GET)
        form.is_valid()
        data = form.cleaned_data
        filters = TermFilters(
            q=data.get("q") or "", domain=data.get("domain") or "", status=data.get("status") or ""
        )
        page = Paginator(term_search(user=user, filters=filters), PAGE_SIZE).get_page(
            self.request.GET.get("page")
        )
        keep = {key: value for key, value in vars(filters).items() if value}
        context.update(
            form=form,
            filters=filters,
            page_obj=page,
            terms=list(page.object_list),
            keep_query=urlencode(keep),
            has_filters=bool(keep),
            can_propose=term_domains_for(user=user).exists(),
            domains=list(Domain.objects.order_by("name").values_list("slug", "name")),
            statuses=TermStatus.choices,
        )
        return context


class TermDetailView(LoginRequiredMixin, TemplateView):
    template_name = "products/term_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        term = _visible_term(self.request, kwargs["domain_slug"], kwargs["term_slug"])
        can_approve = can_approve_term(user=user, domain=term.domain)
        context.update(
            term=term,
            usage=term_usage(term=term, user=user),
            versions=list(term.versions.select_related("changed_by").order_by("-number")),
            can_edit=can_edit_term(user=user, term=term),
            can_approve=can_approve and term.status != TermStatus.APPROVED,
            can_deprecate=can_approve and term.status != TermStatus.DEPRECATED,
            status_only=["status"],
        )
        return context


class TermCreateView(LoginRequiredMixin, View):
    template_name = "products/term_form.html"

    def _domains(self, request):
        domains = term_domains_for(user=request.user).order_by("name")
        if not domains.exists():
            raise PermissionDenied(
                "Members of a domain propose its glossary terms. Ask a domain owner to add "
                "you to their team."
            )
        return domains

    def get(self, request):
        domains = self._domains(request)
        initial = {"domain": domains.filter(slug=request.GET.get("domain", "")).first()}
        form = TermForm(domains=domains, initial=initial)
        return render(request, self.template_name, {"form": form, "creating": True})

    def post(self, request):
        form = TermForm(request.POST, domains=self._domains(request))
        if form.is_valid():
            data = form.cleaned_data
            try:
                term = term_create(
                    domain=data["domain"],
                    by=request.user,
                    name=data["name"],
                    definition=data["definition"],
                    synonyms=data["synonyms"],
                    note=data["note"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"“{term.name}” proposed as a draft. Owners and stewards of "
                    f"{term.domain.name} approve it.",
                )
                return redirect(term.get_absolute_url())
        return render(request, self.template_name, {"form": form, "creating": True}, status=400)


class TermEditView(LoginRequiredMixin, View):
    template_name = "products/term_form.html"

    def _term(self, request, domain_slug, term_slug) -> GlossaryTerm:
        term = _visible_term(request, domain_slug, term_slug)
        if not can_edit_term(user=request.user, term=term):
            raise PermissionDenied(
                f"Only members of the {term.domain.name} domain edit its draft terms, and "
                "only its owners and stewards edit approved or deprecated ones."
            )
        return term

    def get(self, request, domain_slug: str, term_slug: str):
        term = self._term(request, domain_slug, term_slug)
        form = TermForm(
            initial={
                "name": term.name,
                "definition": term.definition,
                "synonyms": ", ".join(term.synonyms),
            }
        )
        return render(request, self.template_name, {"form": form, "term": term})

    def post(self, request, domain_slug: str, term_slug: str):
        term = self._term(request, domain_slug, term_slug)
        form = TermForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                updated = term_update(
                    term=term,
                    by=request.user,
                    name=data["name"],
                    definition=data["definition"],
                    synonyms=data["synonyms"],
                    note=data["note"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                if updated.version == term.version:
                    messages.info(request, "Nothing changed.")
                else:
                    messages.success(
                        request, f"Saved “{updated.name}” as version {updated.version}."
                    )
                return redirect(updated.get_absolute_url())
        return render(request, self.template_name, {"form": form, "term": term}, status=400)


class TermStatusView(LoginRequiredMixin, View):
    """POST: approve or deprecate a term, with an optional note."""

    action = ""

    def post(self, request, domain_slug: str, term_slug: str):
        term = _visible_term(request, domain_slug, term_slug)
        form = TermNoteForm(request.POST)
        note = form.cleaned_data["note"] if form.is_valid() else ""
        try:
            term = term_status_change(term=term, by=request.user, action=self.action, note=note)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"“{term.name}” is now {term.get_status_display().lower()}.")
        return redirect(term.get_absolute_url())


def _link_action(request, *, form: TermLinkForm, link, unlink, target) -> bool:
    """Run the link or unlink service for a valid form; messages say what happened."""
    if not form.is_valid():
        messages.error(request, "Choose a term to link.")
        return False
    term = form.cleaned_data["term"]
    service = link if form.cleaned_data["action"] == "link" else unlink
    try:
        service(term=term, by=request.user, **target)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return False
    verb = "Linked" if service is link else "Unlinked"
    messages.success(request, f"{verb} “{term.name}”.")
    return True


class ProductTermsView(LoginRequiredMixin, View):
    """The glossary terms of a product and its columns; its editors link and unlink."""

    template_name = "products/product_terms.html"

    def _context(self, request, product, form=None) -> dict:
        terms = terms_of_product(product=product, user=request.user)
        can_edit = can_edit_product(user=request.user, product=product)
        return {
            "product": product,
            "terms": terms,
            "can_edit": can_edit,
            "form": form
            or (TermLinkForm(terms=terms_linkable(user=request.user)) if can_edit else None),
        }

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        return render(request, self.template_name, self._context(request, product))

    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        terms = (
            GlossaryTerm.objects.visible_to(request.user).filter(products=product)
            if request.POST.get("action") == "unlink"
            else terms_linkable(user=request.user)
        )
        _link_action(
            request,
            form=TermLinkForm(request.POST, terms=terms),
            link=term_link_product,
            unlink=term_unlink_product,
            target={"product": product},
        )
        return redirect(reverse("definitions:product-terms", args=[domain_slug, product_slug]))


class ColumnTermsView(LoginRequiredMixin, View):
    """POST: link or unlink a term to a column (from the column's edit page)."""

    def post(self, request, domain_slug: str, product_slug: str, port_slug: str, column_id: int):
        product = product_page(request, domain_slug, product_slug, edit=True)
        port = product_page_port(product, port_slug)
        column = get_object_or_404(Column, pk=column_id, port=port)
        column.port = port
        terms = (
            GlossaryTerm.objects.visible_to(request.user).filter(columns=column)
            if request.POST.get("action") == "unlink"
            else terms_linkable(user=request.user)
        )
        _link_action(
            request,
            form=TermLinkForm(request.POST, terms=terms),
            link=term_link_column,
            unlink=term_unlink_column,
            target={"column": column},
        )
        return redirect(
            reverse("products:column-edit", args=[domain_slug, product_slug, port_slug, column_id])
        )


# --- metrics -------------------------------------------------------------------------------


class MetricListView(LoginRequiredMixin, TemplateView):
    template_name = "products/metric_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        q = " ".join(self.request.GET.get("q", "").split())[:200]
        page = Paginator(metric_search(user=user, q=q), PAGE_SIZE).get_page(
            self.request.GET.get("page")
        )
        context.update(
            q=q,
            page_obj=page,
            metrics=list(page.object_list),
            can_create=managed_domains(user=user).exists(),
        )
        return context


def _values_url(port: OutputPort) -> str:
    """Where the filter builder asks for a column's few values (read with the viewer's
    access, like every read)."""
    product = port.product
    url = reverse(
        "sharing:product-column-values",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
    )
    return f"{url}?{urlencode({'port': port.slug})}"


def _metric_form(port: OutputPort, data=None, **kwargs) -> MetricForm:
    types = port_column_types(port)
    return MetricForm(
        data, columns=list(types), column_types=types, values_url=_values_url(port), **kwargs
    )


def _editable_ports(user):
    return (
        OutputPort.objects.filter(product__domain__in=managed_domains(user=user))
        .select_related("product__domain")
        .order_by("product__domain__name", "product__name", "name")
    )


class MetricCreateView(LoginRequiredMixin, View):
    """Two steps: choose the output port (`?port=<id>`), then define the metric with the
    port's columns to choose from."""

    template_name = "products/metric_form.html"

    def _ports(self, request):
        ports = _editable_ports(request.user)
        if not ports.exists():
            raise PermissionDenied(
                "Owners and stewards of a domain define metrics on its products' output "
                "ports. None of your domains has a port yet."
                if managed_domains(user=request.user).exists()
                else "Owners and stewards of a domain define metrics on its products. Ask a "
                "domain owner to add you to their team."
            )
        return ports

    def _port(self, request, ports, value) -> OutputPort | None:
        if not value:
            return None
        try:
            return ports.get(pk=int(value))
        except (ValueError, OutputPort.DoesNotExist):
            return None

    def _render(self, request, *, port, form, status=200):
        columns = list(port_column_types(port)) if port else []
        return render(
            request,
            self.template_name,
            {"port": port, "form": form, "columns": columns},
            status=status,
        )

    def get(self, request):
        ports = self._ports(request)
        port = self._port(request, ports, request.GET.get("port"))
        if port is None and request.GET.get("product"):
            # From a product's page: its ports only; with one, straight to step 2.
            domain_slug, _, product_slug = request.GET["product"].partition(".")
            of_product = ports.filter(product__domain__slug=domain_slug, product__slug=product_slug)
            if len(of_product) == 1:
                port = of_product[0]
            elif of_product:
                ports = of_product
        if port is None:
            return self._render(request, port=None, form=MetricPortForm(ports=ports))
        form = _metric_form(port, initial={"key": f"{port.product.domain.slug}."})
        return self._render(request, port=port, form=form)

    def post(self, request):
        ports = self._ports(request)
        port = self._port(request, ports, request.POST.get("port"))
        if port is None:
            form = MetricPortForm(request.POST, ports=ports)
            form.is_valid()
            return self._render(request, port=None, form=form, status=400)
        form = _metric_form(port, request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                metric = metric_create(by=request.user, port=port, **data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Metric {metric.key} defined.")
                return redirect(metric.get_absolute_url())
        return self._render(request, port=port, form=form, status=400)


class MetricDetailView(LoginRequiredMixin, TemplateView):
    """A metric's definition and its values for the query in the URL, as a chart and a
    table: the same service as the API's values and the notebook's portal.metric()."""

    template_name = "products/metric_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.request
        try:
            metric = metric_get_visible(user=request.user, key=kwargs["key"])
        except Metric.DoesNotExist:
            raise Http404("No such metric, or you may not see it.") from None
        product = metric.port.product
        params = request.GET.copy()
        if "grain" not in params and metric.time_column:
            params["grain"] = MetricGrain.MONTH  # a first look: per month
        form = MetricQueryForm(
            params,
            metric=metric,
            column_types=port_column_types(metric.port),
            values_url=_values_url(metric.port),
        )
        context.update(
            metric=metric,
            product=product,
            form=form,
            fixed_filters=filter_phrases(metric.filters),
            can_edit=can_edit_product(user=request.user, product=product),
            api_url=reverse("definitions-api:metric-values", kwargs={"key": metric.key}),
            embed_url=_embed_url(metric) if can_share(user=request.user, product=product) else "",
        )
        if not form.is_valid():
            context["problem"] = "Correct the fields marked below."
            return context
        data = form.cleaned_data
        try:
            result = metric_evaluate(
                metric=metric,
                user=request.user,
                channel=Channel.WEB,
                dimensions=data.get("dimensions"),
                grain=data.get("grain"),
                start=data.get("start"),
                end=data.get("end"),
                filters=data.get("filters") or None,
                client_address=request.META.get("REMOTE_ADDR") or None,
            )
        except MetricRefused as exc:
            context["denied_reason" if exc.status == 403 else "problem"] = exc.message
            return context
        figure = metric_figure(result)
        context.update(
            result=result,
            figure=figure,
            table_rows=result.rows[:TABLE_ROWS],
            dimension_columns=list(result.query.dimensions),
            more_rows=max(0, len(result.rows) - TABLE_ROWS),
            row_filter_words=filter_phrases(result.row_filter),
            notebook_call=_notebook_call(metric, result),
            client_install="pip install "
            + request.build_absolute_uri(reverse("portal:client-wheel")),
            token_create_url=reverse("portal:my-tokens")
            + "?"
            + urlencode({"name": f"Notebook: {metric.name}", "next": request.get_full_path()}),
            query_string=urlencode(
                [(k, v) for k, values in request.GET.lists() for v in values if v], doseq=False
            ),
            sync_url=_sync_url(metric, result),
        )
        return context


def _embed_url(metric: Metric) -> str:
    """The new-embed form with this metric as what it shows."""
    product = metric.port.product
    url = reverse("sharing:embed-create", args=[product.domain.slug, product.slug])
    return f"{url}?{urlencode({'metric': metric.key})}"


def _sync_url(metric: Metric, result) -> str:
    """The new-sync form with these values as its source (grouped as shown)."""
    product = metric.port.product
    query = [("source", f"metric:{metric.key}"), ("grain", result.query.grain or "")]
    query += [("dimension", name) for name in result.query.dimensions]
    url = reverse("sharing:sync-create", args=[product.domain.slug, product.slug])
    return f"{url}?{urlencode(query)}"


def _notebook_call(metric: Metric, result) -> str:
    """The same numbers from a notebook, for the page to show."""
    args = [json.dumps(metric.key)]
    if result.query.grain:
        args.append(f"grain={json.dumps(result.query.grain)}")
    if result.query.dimensions:
        args.append(f"dimensions={json.dumps(list(result.query.dimensions))}")
    if result.query.start:
        args.append(f'start="{result.query.start.isoformat()}"')
    if result.query.end:
        args.append(f'end="{result.query.end.isoformat()}"')
    if result.query.filters:
        args.append(f"filters={json.dumps([c.as_dict() for c in result.query.filters])}")
    return f"portal.metric({', '.join(args)})"
