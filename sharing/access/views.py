"""Access pages: a product's Access tab (request access; for its managers, who has
access, pending requests, grants proposed for revocation, recent reads) and "My access".
Views parse input, call a service or selector, render. (The pages of admins and domain
managers, grants across products and the audit, are in admin_views.py.)
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.models import Group
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
    product_column_names,
)
from sharing.access.services.grants import grant_create, grant_revoke
from sharing.access.services.requests import (
    access_request_approve,
    access_request_cancel,
    access_request_create,
    access_request_deny,
)
from sharing.models import AccessGrant, AccessRequest

UNUSED_REASON = "Unused for 60 days (access review)."


def _access_url(product: DataProduct) -> str:
    return reverse(
        "sharing:product-access",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
    )


def _request_form(product, columns, data=None) -> AccessRequestForm:
    return AccessRequestForm(data, columns=columns, max_days=product.access_max_days)


def _grant_form(product, columns, data=None) -> GrantForm:
    return GrantForm(data, columns=columns, max_days=product.access_max_days)


def _render_access(request, product: DataProduct, *, status=200, **forms):
    user = request.user
    columns = product_column_names(product=product)
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
            item.approve_form = AccessApproveForm(
                columns=item.columns or columns,
                max_days=item.duration_days,
                prefix=f"r{item.pk}",
            )
        context.update(
            grants=list(grants_of_product(product=product)),
            pending=pending,
            unused=list(grants_unused(product=product)),
            reads=reads_recent(product=product),
            can_grant=can_grant_directly(user=user, product=product),
            grant_form=forms.get("grant_form") or _grant_form(product, columns),
            unused_reason=UNUSED_REASON,
        )
    return render(request, "sharing/product_access.html", context, status=status)


class ProductAccessView(LoginRequiredMixin, View):
    def get(self, request, domain_slug: str, product_slug: str):
        return _render_access(request, product_page(request, domain_slug, product_slug))


class AccessRequestCreateView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        form = _request_form(product, product_column_names(product=product), request.POST)
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
    """POST: approve, deny or cancel a request, through its service."""

    action = ""

    def post(self, request, domain_slug: str, product_slug: str, request_id: int):
        product = product_page(request, domain_slug, product_slug)
        access_request = _access_request(product, request_id)
        who = access_request.requester.username
        try:
            if self.action == "approve":
                form = AccessApproveForm(
                    request.POST,
                    columns=access_request.columns or product_column_names(product=product),
                    max_days=access_request.duration_days,
                    prefix=f"r{access_request.pk}",
                )
                if not form.is_valid():
                    raise ValidationError(
                        [f"{field}: {' '.join(errs)}" for field, errs in form.errors.items()]
                    )
                access_request_approve(
                    request=access_request, by=request.user, **form.service_kwargs()
                )
                messages.success(request, f"Approved: {who} can read {product.name} now.")
            elif self.action == "deny":
                access_request_deny(
                    request=access_request, by=request.user, reason=request.POST.get("reason", "")
                )
                messages.success(request, f"Denied; {who} is told why.")
            else:
                access_request_cancel(request=access_request, by=request.user)
                messages.success(request, "Your request is cancelled.")
        except PermissionDenied:
            raise
        except ValidationError as exc:
            return _refused(request, product, exc, f"Could not {self.action} the request")
        if self.action == "cancel" and request.POST.get("next") == "my-access":
            return redirect("sharing:my-access")
        return redirect(_access_url(product))


class GrantCreateView(LoginRequiredMixin, View):
    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        form = _grant_form(product, product_column_names(product=product), request.POST)
        if form.is_valid():
            data = form.cleaned_data
            user = group = None
            if data["username"]:
                user = get_user_model().objects.filter(username=data["username"]).first()
                if user is None:
                    form.add_error("username", "No user with this username.")
            if data["group"]:
                group = Group.objects.filter(name=data["group"]).first()
                if group is None:
                    form.add_error("group", "No group with this name.")
        if form.is_valid():
            chosen = data["columns"]
            try:
                grant = grant_create(
                    product=product,
                    by=request.user,
                    user=user,
                    group=group,
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
