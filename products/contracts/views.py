"""Contract pages: the product's Contract tab (versions, import by upload, downloads,
service levels and support), the diff of two versions, publishing with its confirmation,
and a new product from a contract.

Views parse input, call products.contracts.services.contracts and render. Who may see a product is
the visibility rule (a hidden product is a 404); who may change it the services decide
(a refusal is a 403).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from products.catalog.permissions import CREATORS_ONLY_MESSAGE, can_edit_product, managed_domains
from products.catalog.scope import product_header, product_page
from products.choices import MEASURED_SLO_KINDS, ContractStatus, SLOKind
from products.contracts.forms import (
    ContractImportForm,
    ContractPublishForm,
    ProductFromContractForm,
)
from products.contracts.notifications import contract_grantee_recipients
from products.contracts.services.contracts import (
    BreakingChangesUnconfirmed,
    ContractInvalid,
    ContractTooLarge,
    contract_current,
    contract_delete,
    contract_diff,
    contract_export,
    contract_import,
    contract_publish,
    contract_publish_changes,
    contract_text_diff,
    contract_yaml,
    contracts_of_product,
    product_create_from_contract,
)
from products.contracts.services.documents import document_dump, semver_next_major
from products.contracts.services.mapping import SLA_PROPERTY_OF
from products.contracts.services.odps import product_odps
from products.feedback.services.support import support_channels_of
from products.models import Contract, DataProduct
from products.trust.selectors import quality_url

YAML = "application/yaml; charset=utf-8"


def contract_url(product: DataProduct, name: str = "product-contract", **kwargs) -> str:
    return reverse(
        f"products:{name}",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug, **kwargs},
    )


def _contract(product: DataProduct, version: str) -> Contract:
    contract = (
        Contract.objects.select_related("created_by", "published_by")
        .filter(product=product, version=version)
        .first()
    )
    if contract is None:
        raise Http404(f"{product.name} has no contract version {version}.")
    contract.product = product
    return contract


def _download(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type=YAML)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _diff_defaults(contracts: list[Contract], current: Contract | None) -> tuple[str, str]:
    """The versions compared unless the person chooses: the newest against the current
    one (or against the one before it)."""
    if len(contracts) < 2:
        return "", ""
    newest = contracts[0]
    if current is not None and current.pk != newest.pk:
        return current.version, newest.version
    return contracts[1].version, newest.version


def _slo_rows(slos) -> list[dict]:
    """Each SLO in words, with the ODCS property it is exchanged as."""
    rows = []
    for slo in slos:
        if slo.kind == SLOKind.FRESHNESS:
            promise = (
                f"Data at most {slo.threshold_hours or 0:g} hours old in "
                f"{slo.target_percent:g}% of observations"
            )
        elif slo.kind == SLOKind.AVAILABILITY:
            promise = f"The source answers {slo.target_percent:g}% of probes"
        elif slo.kind == SLOKind.QUALITY:
            promise = f"{slo.target_percent:g}% of check evaluations pass"
        else:
            promise = f"{slo.value} {slo.unit}".strip()
        rows.append(
            {
                "label": slo.get_kind_display(),
                "promise": promise,
                "description": slo.description,
                "measured": slo.kind in MEASURED_SLO_KINDS,
                "property": SLA_PROPERTY_OF[slo.kind],
            }
        )
    return rows


def _render_contract_tab(request, product: DataProduct, *, status: int = 200, **extra):
    can_edit = can_edit_product(user=request.user, product=product)
    contracts = list(contracts_of_product(product=product))
    published = [c for c in contracts if c.status == ContractStatus.PUBLISHED]
    current = max(published, key=lambda c: (c.published_at, c.pk)) if published else None
    diff_from, diff_to = _diff_defaults(contracts, current)
    context = {
        **product_header(
            product=product, active_tab="contract", crumb="Contract", can_edit=can_edit
        ),
        "contracts": contracts,
        "current": current,
        "diff_from": diff_from,
        "diff_to": diff_to,
        "slos": _slo_rows(product.slos.order_by("kind")),
        "quality_url": quality_url(product),
        "support_channels": list(support_channels_of(product=product)),
        "import_form": ContractImportForm() if can_edit else None,
        **extra,
    }
    return render(request, "products/product_contract.html", context, status=status)


class ProductContractView(LoginRequiredMixin, View):
    def get(self, request, domain_slug: str, product_slug: str):
        return _render_contract_tab(request, product_page(request, domain_slug, product_slug))


class ContractImportView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        form = ContractImportForm(request.POST, request.FILES)
        problems, summary = [], ""
        if form.is_valid():
            try:
                contract = contract_import(
                    product=product,
                    by=request.user,
                    text=form.text(),
                    default_source=form.cleaned_data["source"],
                    allow_missing_relations=form.cleaned_data["allow_missing_relations"],
                )
            except ContractTooLarge as exc:
                form.add_error("file", str(exc))
            except ContractInvalid as exc:
                problems, summary = exc.problems, exc.summary
            else:
                messages.success(
                    request,
                    f"Imported version {contract.version} as a draft. Compare it with the "
                    "current version, then publish it.",
                )
                return redirect(contract_url(product) + "#versions")
        return _render_contract_tab(
            request,
            product,
            status=400,
            import_form=form,
            problems=problems,
            problems_summary=summary,
        )


class ContractDiffView(LoginRequiredMixin, View):
    template_name = "products/contract_diff.html"

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        contracts = list(contracts_of_product(product=product))
        default_from, default_to = _diff_defaults(contracts, contract_current(product=product))
        wanted = {
            "from": request.GET.get("from") or default_from,
            "to": request.GET.get("to") or default_to,
        }
        context = {
            **product_header(product=product, active_tab="contract", crumb="Contract changes"),
            "contracts": contracts,
        }
        by_version = {c.version: c for c in contracts}
        old, new = by_version.get(wanted["from"]), by_version.get(wanted["to"])
        if old is None or new is None:
            missing = [v for v in wanted.values() if v and v not in by_version]
            context["error"] = (
                f"{product.name} has no contract version {', '.join(missing)}."
                if missing
                else "Choose two versions to compare."
            )
            return render(request, self.template_name, context, status=400 if missing else 200)
        changes = contract_diff(old=old.document, new=new.document)
        context.update(
            old=old,
            new=new,
            changes=changes,
            breaking=[c for c in changes if c.breaking],
            text_diff=contract_text_diff(old=old, new=new),
        )
        return render(request, self.template_name, context)


class ContractPublishView(LoginRequiredMixin, View):
    """GET: what publishing this version changes, its breaking changes and who is told;
    POST: publish (breaking changes need the confirmation box)."""

    template_name = "products/contract_publish.html"

    def _render(self, request, product, contract, form, *, status=200, **extra):
        current = contract_current(product=product)
        changes = contract_publish_changes(contract=contract, current=current)
        breaking = [c for c in changes if c.breaking]
        context = {
            **product_header(
                product=product, active_tab="contract", crumb=f"Publish {contract.version}"
            ),
            "contract": contract,
            "current": current,
            "changes": changes,
            "breaking": breaking,
            "next_major": semver_next_major(current.version) if current else "",
            "major_unchanged": bool(
                breaking
                and current
                and contract.version.split(".")[0] == current.version.split(".")[0]
            ),
            "grantees": len(contract_grantee_recipients(product=product)) if breaking else 0,
            "form": form,
            **extra,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request, domain_slug: str, product_slug: str, version: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        contract = _contract(product, version)
        if contract.status != ContractStatus.DRAFT:
            messages.info(request, f"Version {version} is published already.")
            return redirect(contract_url(product))
        return self._render(request, product, contract, ContractPublishForm())

    def post(self, request, domain_slug: str, product_slug: str, version: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        contract = _contract(product, version)
        form = ContractPublishForm(request.POST)
        form.is_valid()
        try:
            contract_publish(
                contract=contract,
                by=request.user,
                confirm_breaking=bool(form.cleaned_data.get("confirm_breaking")),
            )
        except BreakingChangesUnconfirmed:
            form.add_error(
                "confirm_breaking",
                "This version breaks the current one: tick the box to publish it anyway.",
            )
            return self._render(request, product, contract, form, status=400)
        except ContractInvalid as exc:
            return self._render(
                request,
                product,
                contract,
                form,
                status=400,
                problems=exc.problems,
                problems_summary=exc.summary,
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(contract_url(product))
        messages.success(
            request,
            f"Version {version} is the current contract; the catalog now follows it.",
        )
        return redirect(contract_url(product))


class ContractDeleteView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str, version: str):
        product = product_page(request, domain_slug, product_slug, edit=True)
        contract = _contract(product, version)
        try:
            contract_delete(contract=contract, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Deleted the draft version {version}.")
        return redirect(contract_url(product) + "#versions")


class ContractDownloadView(LoginRequiredMixin, View):
    def get(self, request, domain_slug: str, product_slug: str, version: str):
        product = product_page(request, domain_slug, product_slug)
        contract = _contract(product, version)
        return _download(contract_yaml(contract=contract), f"{product.key}-{version}.odcs.yaml")


class ProductODCSDownloadView(LoginRequiredMixin, View):
    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        return _download(
            document_dump(contract_export(product=product)), f"{product.key}.odcs.yaml"
        )


class ProductODPSDownloadView(LoginRequiredMixin, View):
    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        return _download(document_dump(product_odps(product=product)), f"{product.key}.odps.yaml")


class ProductFromContractView(LoginRequiredMixin, View):
    template_name = "products/contract_product_create.html"

    def _domains(self, request):
        domains = managed_domains(user=request.user).order_by("name")
        if not domains.exists():
            raise PermissionDenied(CREATORS_ONLY_MESSAGE)
        return domains

    def get(self, request):
        form = ProductFromContractForm(domains=self._domains(request))
        return render(request, self.template_name, {"form": form})

    def post(self, request):
        form = ProductFromContractForm(request.POST, request.FILES, domains=self._domains(request))
        context: dict = {"form": form}
        if form.is_valid():
            try:
                contract = product_create_from_contract(
                    by=request.user,
                    text=form.text(),
                    domain=form.cleaned_data["domain"],
                    name=form.cleaned_data["name"],
                    default_source=form.cleaned_data["source"],
                    allow_missing_relations=form.cleaned_data["allow_missing_relations"],
                )
            except ContractTooLarge as exc:
                form.add_error("file", str(exc))
            except ContractInvalid as exc:
                context.update(problems=exc.problems, problems_summary=exc.summary)
            else:
                product = DataProduct.objects.select_related("domain").get(pk=contract.product_id)
                messages.success(
                    request,
                    f"Draft {product.name} created from version {contract.version} of its "
                    "contract. Check its ports and columns, then publish it.",
                )
                return redirect(contract_url(product))
        return render(request, self.template_name, context, status=400)
