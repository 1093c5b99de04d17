"""Retirement pages: a product's retirement page (propose, object, withdraw, proceed).

Views parse input, call products.retirement.selectors or products.retirement.services, and
render. A product comes through the visibility rule (a hidden product is a 404); the
services decide who may change what (a refusal is a 403)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from portal.core.forms import add_service_errors
from products.catalog.permissions import require_product_editor
from products.catalog.scope import product_header, product_page
from products.retirement.forms import (
    RetirementObjectForm,
    RetirementProceedForm,
    RetirementProposeForm,
    RetirementWithdrawForm,
)
from products.retirement.selectors import retirement_overview
from products.retirement.services import (
    grace_days,
    retirement_object,
    retirement_open_proposal,
    retirement_proceed,
    retirement_propose,
    retirement_withdraw,
)

FORMS = {
    "propose": RetirementProposeForm,
    "object": RetirementObjectForm,
    "withdraw": RetirementWithdrawForm,
    "proceed": RetirementProceedForm,
}


def _retirement_url(product) -> str:
    return reverse(
        "products:product-retirement",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
    )


class ProductRetirementView(LoginRequiredMixin, View):
    """GET: the product's retirement: the proposal and its notice period, objections,
    every step taken, and the forms the user may use. POST (action in the URL): propose,
    object, withdraw or proceed, through the services; invalid input re-renders the page
    with the form's errors (400)."""

    template_name = "products/product_retirement.html"
    action = ""

    def _render(self, request, product, *, forms=None, status: int = 200):
        overview = retirement_overview(product=product, user=request.user)
        bound = forms or {}
        context = {
            "overview": overview,
            "proposal": overview.proposal,
            "forms": {name: bound.get(name) or form() for name, form in FORMS.items()},
            "grace_days": grace_days(),
            **product_header(
                product=product, active_tab="usage", crumb="Retirement", can_edit=overview.can_edit
            ),
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        return self._render(request, product)

    def post(self, request, domain_slug: str, product_slug: str):
        product = product_page(request, domain_slug, product_slug)
        form = FORMS[self.action](request.POST)
        proposal = retirement_open_proposal(product=product)
        if self.action != "propose" and proposal is None:
            messages.error(request, f"{product.name} has no retirement proposal in progress.")
            return redirect(_retirement_url(product))
        if self.action != "object":
            require_product_editor(
                user=request.user, product=product, action="decide on this product's retirement"
            )
        if form.is_valid():
            data = form.cleaned_data
            try:
                if self.action == "propose":
                    proposal = retirement_propose(
                        product=product,
                        by=request.user,
                        reason=data["reason"],
                        notice_days=data["notice_days"],
                    )
                    done = (
                        f"Retirement of {product.name} proposed. The people with access are "
                        f"told; they may object until {proposal.notice_ends_at:%d %b %Y}."
                    )
                elif self.action == "object":
                    retirement_object(proposal=proposal, by=request.user, reason=data["reason"])
                    done = "Your objection is recorded; the owners are told and decide."
                elif self.action == "withdraw":
                    retirement_withdraw(proposal=proposal, by=request.user, reason=data["reason"])
                    done = f"Retirement proposal withdrawn: {product.name} stays."
                else:
                    retirement_proceed(proposal=proposal, by=request.user, reason=data["reason"])
                    done = (
                        f"{product.name} is deprecated; it will be retired after the grace period."
                    )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, done)
                return redirect(_retirement_url(product))
        return self._render(request, product, forms={self.action: form}, status=400)
