"""Access pages: a product's Access tab (request access; for its managers, who has
access, pending requests, grants proposed for revocation, recent reads) and "My access".
Views parse input, call a service or selector, render. (The pages of admins and domain
managers, grants across products and the audit, are in admin_views.py.)
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from portal.core.forms import add_service_errors
from products.catalog.permissions import can_edit_product
from products.catalog.scope import product_header, product_page
from products.choices import PUBLIC_STATUSES
from products.models import DataProduct
from sharing.access.decision import grants_active_for, reads_everything
from sharing.access.forms import AccessApproveForm, AccessRequestForm, GrantForm
from sharing.access.selectors import (
    access_request_pending_of,
    access_requests_of_user,
    access_requests_pending,
    grants_of_product,
    grants_of_user,
    grants_unused,
    reads_recent,
)
from sharing.access.services.common import (
    can_grant_directly,
    can_manage_access,
    product_columns,
)
from sharing.access.services.grants import grant_create, grant_revoke
from sharing.access.services.requests import (
    access_request_approve,
    access_request_cancel,
    access_request_create,
    access_request_deny,
)
from sharing.choices import RequestStatus
from sharing.models import AccessGrant, AccessRequest

UNUSED_REASON = "Unused for 60 days (access review)."


def _access_url(product: DataProduct) -> str:
    return reverse(
        "sharing:product-access",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
    )


def _column_types(product: DataProduct) -> dict[str, str]:
    """The product's column names (every port, in order) with their declared types."""
    types: dict[str, str] = {}
    for column in product_columns(product=product):
        types.setdefault(column.name, column.data_type)
    return types


def _values_url(product: DataProduct) -> str:
    return reverse(
        "sharing:product-column-values",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
    )


def _request_form(product, columns, data=None) -> AccessRequestForm:
    return AccessRequestForm(data, columns=columns, max_days=product.access_max_days)


def _grant_form(product, column_types: dict[str, str], data=None) -> GrantForm:
    return GrantForm(
        data,
        columns=list(column_types),
        max_days=product.access_max_days,
        column_types=column_types,
        values_url=_values_url(product),
    )


def _approve_form(
    product, access_request: AccessRequest, column_types: dict[str, str], data=None
) -> AccessApproveForm:
    """The decision form of a pending request: the columns asked (all: the product's),
    a row filter built on them, a duration, a note (the reason when denying)."""
    columns = access_request.columns or list(column_types)
    return AccessApproveForm(
        data,
        columns=columns,
        max_days=access_request.duration_days,
        column_types={name: column_types.get(name, "") for name in columns},
        values_url=_values_url(product),
        prefix=f"r{access_request.pk}",
    )


def _render_access(request, product: DataProduct, *, status=200, approve_forms=None, **forms):
    user = request.user
    column_types = _column_types(product)
    columns = list(column_types)
    manages = can_manage_access(user=user, product=product)
    everything = reads_everything(user=user, product=product)
    context = {
        **product_header(
            product=product,
            active_tab="access",
            can_edit=can_edit_product(user=user, product=product),
        ),
        "can_manage": manages,
        "reads_everything": everything,
        "columns": columns,
        "my_pending": access_request_pending_of(user=user, product=product),
        "my_grants": [] if everything else list(grants_active_for(user=user, product=product)),
        "requestable": product.status in PUBLIC_STATUSES,
    }
    context["request_form"] = forms.get("request_form") or _request_form(product, columns)
    if manages:
        pending = list(access_requests_pending(product=product))
        for item in pending:
            item.approve_form = (approve_forms or {}).get(item.pk) or _approve_form(
                product, item, column_types
            )
        context.update(
            grants=list(grants_of_product(product=product)),
            pending=pending,
            unused=list(grants_unused(product=product)),
            reads=reads_recent(product=product),
            can_grant=can_grant_directly(user=user, product=product),
            grant_form=forms.get("grant_form") or _grant_form(product, column_types),
            unused_reason=UNUSED_REASON,
        )
    return render(request, "sharing/product_access.html", context, status=status)


class ProductAccessView(LoginRequiredMixin, View):
    def get(self, request, domain_slug: str, product_slug: str):
        return _render_access(request, product_page(request, domain_slug, product_slug))


class AccessRequestCreateView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        form = _request_form(product, list(_column_types(product)), request.POST)
        if form.is_valid():
            try:
                access_request = access_request_create(
                    product=product, by=request.user, **form.service_kwargs()
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                if access_request.status == "approved":
                    messages.success(request, "Access granted at once: see it below.")
                else:
                    messages.success(
                        request, "Request sent. The domain's owners and stewards are notified."
                    )
                return redirect(_access_url(product))
        return _render_access(request, product, status=400, request_form=form)


def _access_request(product: DataProduct, request_id: int) -> AccessRequest:
    access_request = AccessRequest.objects.filter(product=product, pk=request_id).first()
    if access_request is None:
        raise Http404("No such request.")
    access_request.product = product
    return access_request


def _refused(request, product, exc: Exception, what: str):
    text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    messages.error(request, f"{what}: {text}")
    return redirect(_access_url(product))


class AccessRequestDecideView(LoginRequiredMixin, View):
    """POST: approve or deny a request (the two buttons of its decision form), or cancel
    one's own, through its service. A decision that does not hold shows the access tab
    again with everything entered and the error beside its field."""

    action = ""

    def post(self, request, domain_slug: str, product_slug: str, request_id: int):
        product = product_page(request, domain_slug, product_slug)
        access_request = _access_request(product, request_id)
        if self.action == "cancel":
            return self._cancel(request, product, access_request)
        if not can_manage_access(user=request.user, product=product):
            raise PermissionDenied("Only the domain's owners and stewards decide requests.")
        form = _approve_form(product, access_request, _column_types(product), request.POST)
        who = access_request.requester.username
        try:
            if self.action == "approve":
                if form.is_valid():
                    access_request_approve(
                        request=access_request, by=request.user, **form.service_kwargs()
                    )
                    messages.success(request, f"Approved: {who} can read {product.name} now.")
                    return redirect(_access_url(product))
            else:
                form.is_valid()  # the note is the reason; other fields do not matter here
                reason = form.cleaned_data.get("reason") or request.POST.get("reason", "")
                access_request_deny(request=access_request, by=request.user, reason=reason)
                messages.success(request, f"Denied; {who} is told why.")
                return redirect(_access_url(product))
        except ValidationError as exc:
            if access_request.status != RequestStatus.PENDING or not hasattr(exc, "error_dict"):
                return _refused(request, product, exc, f"Could not {self.action} the request")
            if self.action == "deny":
                form.errors.pop("columns", None)  # denying takes no columns
            add_service_errors(form, exc)
        return _render_access(request, product, status=400, approve_forms={access_request.pk: form})

    def _cancel(self, request, product, access_request):
        try:
            access_request_cancel(request=access_request, by=request.user)
        except ValidationError as exc:
            return _refused(request, product, exc, "Could not cancel the request")
        messages.success(request, "Your request is cancelled.")
        if request.POST.get("next") == "my-access":
            return redirect("sharing:my-access")
        return redirect(_access_url(product))


class GrantCreateView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        if not can_grant_directly(user=request.user, product=product):
            raise PermissionDenied("Only the domain's owners grant access directly.")
        form = _grant_form(product, _column_types(product), request.POST)
        if form.is_valid():
            data = form.cleaned_data
            chosen = data["columns"]
            try:
                grant = grant_create(
                    product=product,
                    by=request.user,
                    user=data["username"],
                    group=data["group"],
                    columns=[] if set(chosen) >= set(form.all_columns) else chosen,
                    row_filter=data["row_filter"] or None,
                    duration_days=data["duration_days"],
                    reason=data["reason"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Granted: {grant.principal_label} reads {product.name}.")
                return redirect(_access_url(product))
        return _render_access(request, product, status=400, grant_form=form)


class GrantRevokeView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str, grant_id: int):
        product = product_page(request, domain_slug, product_slug)
        grant = (
            AccessGrant.objects.filter(product=product, pk=grant_id)
            .select_related("user", "group")
            .first()
        )
        if grant is None:
            raise Http404("No such grant.")
        grant.product = product
        try:
            grant_revoke(grant=grant, by=request.user, reason=request.POST.get("reason", ""))
        except ValidationError as exc:
            return _refused(request, product, exc, "Could not revoke")
        messages.success(
            request, f"Revoked: {grant.principal_label} no longer reads {product.name}."
        )
        return redirect(_access_url(product))


class MyAccessView(LoginRequiredMixin, View):
    def get(self, request):
        now = timezone.now()
        grants = list(grants_of_user(user=request.user))
        for grant in grants:
            grant.is_active = grant.revoked_at is None and grant.expires_at > now
        return render(
            request,
            "sharing/my_access.html",
            {
                "active_grants": [g for g in grants if g.is_active],
                "ended_grants": [g for g in grants if not g.is_active][:50],
                "requests": list(access_requests_of_user(user=request.user)[:100]),
            },
        )
