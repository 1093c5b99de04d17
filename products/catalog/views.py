"""Catalog pages: product, domain, the edit forms and lifecycle actions, schema refresh.

Views parse input, call a selector or a service, and render. products.catalog.scope
resolves a page's product (a hidden product is a 404, like a missing one) and builds its
header; who may change it is decided by the services and products.catalog.permissions (a refusal
is a 403).
"""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from portal.core.forms import add_service_errors
from products.catalog.forms import ColumnForm, OutputPortForm, ProductCreateForm, ProductEditForm
from products.catalog.permissions import (
    CREATORS_ONLY_MESSAGE,
    can_edit_product,
    can_manage_domain,
    managed_domains,
)
from products.catalog.personal_data import personal_data_hint
from products.catalog.scope import (
    QUEUED_TOO_LONG_SECONDS,
    product_header,
    product_page,
    product_page_port,
)
from products.catalog.selectors import (
    CatalogFilters,
    domain_list,
    domain_team,
    port_latest_refresh_runs,
    product_ports,
    product_search,
)
from products.catalog.services.page_views import product_view_record
from products.catalog.services.ports import (
    column_update,
    output_port_create,
    output_port_update,
    source_relations,
)
from products.catalog.services.products import (
    product_create,
    product_deprecate,
    product_publish,
    product_retire,
    product_update,
    publish_blockers,
)
from products.catalog.services.schema_refresh import schema_refresh_request
from products.choices import LIFECYCLE_TRANSITIONS, Classification, LifecycleStatus, RunStatus
from products.models import Column, DataProduct, DataSource, Domain, OutputPort

LIFECYCLE_ACTIONS = {
    "publish": (product_publish, LifecycleStatus.PUBLISHED),
    "deprecate": (product_deprecate, LifecycleStatus.DEPRECATED),
    "retire": (product_retire, LifecycleStatus.RETIRED),
}
ACTION_FOR_STATUS = {status: action for action, (_, status) in LIFECYCLE_ACTIONS.items()}
ACTION_HELP = {
    "publish": "Every signed-in user can find and read it.",
    "deprecate": "Still readable; consumers are told to move off it.",
    "retire": "Hidden from the catalog for everyone outside the domain. Cannot be undone.",
}


def _port_context(*, port: OutputPort, run, can_edit: bool) -> dict:
    """What the schema block of a port shows: its columns, its latest refresh run, whether
    the page should keep polling."""
    in_progress = run is not None and run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
    waiting_long = (
        in_progress
        and run.status == RunStatus.QUEUED
        and (timezone.now() - run.created_at).total_seconds() > QUEUED_TOO_LONG_SECONDS
    )
    return {
        "port": port,
        "columns": list(port.columns.all()),
        "run": run,
        "in_progress": in_progress,
        "waiting_long": waiting_long,
        "can_edit": can_edit,
    }


class ProductDetailView(LoginRequiredMixin, TemplateView):
    template_name = "products/product_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        product = product_page(self.request, kwargs["domain_slug"], kwargs["product_slug"])
        can_edit = can_edit_product(user=user, product=product)
        if not self.request.headers.get("X-Live-Refresh"):
            # A page refreshing itself on a live event (static/js/live_events.js) is the
            # same visit, not another view: counting it would make a product look used.
            product_view_record(product=product, user=user, by_editor=can_edit)
        runs = port_latest_refresh_runs(product=product)
        ports = []
        for port in product_ports(product=product):
            port.product = product
            ports.append(_port_context(port=port, run=runs.get(port.pk), can_edit=can_edit))

        actions = []
        blockers: list[str] = []
        if can_edit:
            for status in LIFECYCLE_TRANSITIONS[LifecycleStatus(product.status)]:
                action = ACTION_FOR_STATUS[status]
                actions.append(
                    {
                        "name": action,
                        "label": action.capitalize(),
                        "help": ACTION_HELP[action],
                        "url": reverse(
                            f"products:product-{action}",
                            kwargs={
                                "domain_slug": product.domain.slug,
                                "product_slug": product.slug,
                            },
                        ),
                    }
                )
            if product.status == LifecycleStatus.DRAFT:
                blockers = publish_blockers(product)
        context.update(
            owners=list(product.owners.all()),
            tags=list(product.tags.all()),
            ports=ports,
            lifecycle_actions=actions,
            publish_blockers=blockers,
            **product_header(product=product, active_tab="overview", can_edit=can_edit),
        )
        return context


class ProductLifecycleView(LoginRequiredMixin, View):
    """POST: publish, deprecate or retire a product, through its service."""

    action = ""

    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        service, status = LIFECYCLE_ACTIONS[self.action]
        try:
            service(product=product, by=request.user)
        except ValidationError as exc:
            messages.error(
                request,
                f"{product.name} was not {LifecycleStatus(status).label.lower()}: "
                + " ".join(exc.messages),
            )
        else:
            messages.success(
                request, f"{product.name} is now {LifecycleStatus(status).label.lower()}."
            )
        return redirect(product.get_absolute_url())


class ProductCreateView(LoginRequiredMixin, View):
    template_name = "products/product_form.html"

    def _domains(self, request):
        domains = managed_domains(user=request.user).order_by("name")
        if not domains.exists():
            raise PermissionDenied(CREATORS_ONLY_MESSAGE)
        return domains

    def get(self, request):
        domains = self._domains(request)
        initial = {}
        wanted = request.GET.get("domain")
        if wanted:
            initial["domain"] = domains.filter(slug=wanted).first()
        form = ProductCreateForm(domains=domains, initial=initial)
        return render(request, self.template_name, {"form": form, "creating": True})

    def post(self, request):
        form = ProductCreateForm(request.POST, domains=self._domains(request))
        if form.is_valid():
            try:
                product = product_create(
                    domain=form.cleaned_data["domain"],
                    by=request.user,
                    slug=form.cleaned_data["slug"],
                    tags=form.cleaned_data["tags"],
                    **form.service_fields(),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Draft {product.name} created. Add an output port and a description, "
                    "then publish it.",
                )
                return redirect(product.get_absolute_url())
        return render(request, self.template_name, {"form": form, "creating": True}, status=400)


class ProductEditView(LoginRequiredMixin, View):
    template_name = "products/product_form.html"

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        form = ProductEditForm(product=product, initial=ProductEditForm.initial_for(product))
        return render(request, self.template_name, {"form": form, "product": product})

    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        form = ProductEditForm(request.POST, product=product)
        if form.is_valid():
            try:
                product_update(
                    product=product,
                    by=request.user,
                    tags=form.cleaned_data["tags"],
                    owners=form.cleaned_data["owners"],
                    **form.service_fields(),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Saved {product.name}.")
                return redirect(product.get_absolute_url())
        context = {"form": form, "product": product}
        return render(request, self.template_name, context, status=400)


class OutputPortCreateView(LoginRequiredMixin, View):
    template_name = "products/port_form.html"

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        form = OutputPortForm(initial={"kind": "table"})
        return render(request, self.template_name, {"form": form, "product": product})

    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        form = OutputPortForm(request.POST)
        if form.is_valid():
            try:
                port = output_port_create(
                    product=product,
                    by=request.user,
                    relation_must_exist=form.relation_must_exist(),
                    **form.service_fields(),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Output port {port.name} added. Refresh its schema to read its columns.",
                )
                return redirect(f"{product.get_absolute_url()}#port-{port.slug}")
        context = {"form": form, "product": product}
        return render(request, self.template_name, context, status=400)


class OutputPortEditView(LoginRequiredMixin, View):
    template_name = "products/port_form.html"

    def get(self, request, domain_slug: str, product_slug: str, port_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        port = product_page_port(product, port_slug)
        form = OutputPortForm(initial=OutputPortForm.initial_for(port))
        return render(request, self.template_name, {"form": form, "product": product, "port": port})

    def post(self, request, domain_slug: str, product_slug: str, port_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        port = product_page_port(product, port_slug)
        form = OutputPortForm(request.POST)
        if form.is_valid():
            try:
                output_port_update(
                    port=port,
                    by=request.user,
                    relation_must_exist=form.relation_must_exist(port),
                    **form.service_fields(),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Saved output port {port.name}.")
                return redirect(f"{product.get_absolute_url()}#port-{port.slug}")
        context = {"form": form, "product": product, "port": port}
        return render(request, self.template_name, context, status=400)


class PortRelationsView(LoginRequiredMixin, View):
    """GET ?source=<id>&schema=<name>: the schemas and tables a port of this product may
    name on the source (JSON), for the port form's suggestions. Editors only."""

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        try:
            source = DataSource.objects.get(pk=int(request.GET.get("source", "")))
        except (ValueError, DataSource.DoesNotExist):
            return JsonResponse({"detail": "Choose a data source."}, status=400)
        schema = request.GET.get("schema", "").strip()[:120]
        found = source_relations(source=source, domain=product.domain, schema_name=schema)
        return JsonResponse(found)


class ColumnEditView(LoginRequiredMixin, View):
    template_name = "products/column_form.html"

    def _column(self, product: DataProduct, port_slug: str, column_id: int) -> Column:
        port = product_page_port(product, port_slug)
        column = get_object_or_404(Column, pk=column_id, port=port)
        column.port = port
        return column

    def get(self, request, domain_slug: str, product_slug: str, port_slug: str, column_id: int):
        product = product_page(request, domain_slug, product_slug, edit=True)
        column = self._column(product, port_slug, column_id)
        # A personal-data hint on the schema links here with its suggested classification.
        suggested = request.GET.get("classification", "")
        classification = suggested if suggested in Classification.values else column.classification
        form = ColumnForm(
            initial={"description": column.description, "classification": classification}
        )
        hint = personal_data_hint(column.name)
        context = {"form": form, "product": product, "column": column, "hint": hint}
        return render(request, self.template_name, context)

    def post(self, request, domain_slug: str, product_slug: str, port_slug: str, column_id: int):
        product = product_page(request, domain_slug, product_slug, edit=True)
        column = self._column(product, port_slug, column_id)
        form = ColumnForm(request.POST)
        if form.is_valid():
            try:
                column_update(column=column, by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Saved column {column.name}.")
                return redirect(f"{product.get_absolute_url()}#port-{column.port.slug}")
        hint = personal_data_hint(column.name)
        context = {"form": form, "product": product, "column": column, "hint": hint}
        return render(request, self.template_name, context, status=400)


class PortSchemaView(LoginRequiredMixin, View):
    """GET: the schema block of one port (columns and latest refresh run). The product
    page polls it every second while a refresh is queued or running.
    POST to the refresh URL: queue a refresh, answer with the same block (HTMX) or go
    back to the product page."""

    template_name = "products/_port_schema.html"

    def get(self, request, domain_slug: str, product_slug: str, port_slug: str):
        product = product_page(request, domain_slug, product_slug)
        port = product_page_port(product, port_slug)
        run = port.refresh_runs.order_by("-created_at").first()
        can_edit = can_edit_product(user=request.user, product=product)
        return render(
            request, self.template_name, _port_context(port=port, run=run, can_edit=can_edit)
        )


class PortRefreshView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str, port_slug: str):
        product = product_page(request, domain_slug, product_slug)
        port = product_page_port(product, port_slug)
        run = schema_refresh_request(port=port, by=request.user)
        if request.headers.get("HX-Request"):
            context = _port_context(port=port, run=run, can_edit=True)
            return render(request, "products/_port_schema.html", context)
        messages.info(
            request,
            f"Schema refresh of {port.name} queued. This page shows the new columns when "
            "it is done.",
        )
        return HttpResponseRedirect(f"{product.get_absolute_url()}#port-{port.slug}")


class DomainListView(LoginRequiredMixin, TemplateView):
    template_name = "products/domain_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["domains"] = domain_list()
        return context


class DomainDetailView(LoginRequiredMixin, TemplateView):
    template_name = "products/domain_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        domain = get_object_or_404(Domain, slug=kwargs["slug"])
        user = self.request.user
        context.update(
            domain=domain,
            # Everyone sees its published products; members and admins also its drafts.
            products=product_search(user=user, filters=CatalogFilters(domain=domain.slug)),
            team=domain_team(domain=domain),
            can_manage=can_manage_domain(user=user, domain=domain),
        )
        return context
