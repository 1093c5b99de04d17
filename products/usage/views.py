"""Usage and retirement pages: a product's Usage tab, its retirement page (propose,
object, withdraw, proceed) and the portal-wide usage dashboard.

Views parse input, call the selectors in products.usage.selectors and
products.retirement.selectors or the services in products.retirement.services, and
render. A product comes through the visibility rule (a hidden product is a 404); the
services decide who may change what (a refusal is a 403).
"""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from portal.core.forms import add_service_errors
from products.catalog.permissions import can_edit_product, managed_domains, require_product_editor
from products.catalog.scope import product_header, product_page
from products.retirement.selectors import retirement_banner, retirement_overview
from products.retirement.services import (
    grace_days,
    retirement_object,
    retirement_open_proposal,
    retirement_proceed,
    retirement_propose,
    retirement_withdraw,
)
from products.usage.forms import (
    RetirementObjectForm,
    RetirementProceedForm,
    RetirementProposeForm,
    RetirementWithdrawForm,
)
from products.usage.selectors import (
    SCOPES,
    USAGE_DAYS,
    product_usage,
    usage_chart_data,
    usage_dashboard,
)


def _retirement_url(product) -> str:
    return reverse(
        "products:product-retirement",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug},
    )


class ProductUsageView(LoginRequiredMixin, TemplateView):
    """The Usage tab: 90 days of page views and data reads by channel, charted, with
    totals; the names of the readers for the product's editors."""

    template_name = "products/product_usage.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        product = product_page(self.request, kwargs["domain_slug"], kwargs["product_slug"])
        can_edit = can_edit_product(user=user, product=product)
        usage = product_usage(product=product, days=USAGE_DAYS, with_readers=can_edit)
        context.update(
            usage=usage,
            chart=usage_chart_data(usage) if usage.views or usage.reads else None,
            channels=[
                {"channel": channel, "label": label, "reads": usage.by_channel.get(channel, 0)}
                for channel, label in _channel_labels()
                if usage.by_channel.get(channel, 0)
            ],
            retirement_url=_retirement_url(product),
            **retirement_banner(product=product, can_edit=can_edit),
            **product_header(product=product, active_tab="usage", can_edit=can_edit),
        )
        return context


def _channel_labels():
    from sharing.choices import Channel

    return Channel.choices


FORMS = {
    "propose": RetirementProposeForm,
    "object": RetirementObjectForm,
    "withdraw": RetirementWithdrawForm,
    "proceed": RetirementProceedForm,
}


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


class UsageDashboardView(LoginRequiredMixin, TemplateView):
    """`/usage/`: the most used and fastest growing products of the last 30 days and the
    unused ones, among those the user may see (or only those of the domains they
    manage)."""

    template_name = "products/usage_dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        scope = self.request.GET.get("scope", "all")
        scope = scope if scope in SCOPES else "all"
        dashboard = usage_dashboard(user=user, scope=scope)
        chart = None
        if dashboard.most_used:
            rows = list(reversed(dashboard.most_used[:10]))  # plotly draws bottom-up
            chart = {
                "products": [row.product.name for row in rows],
                "reads": [row.reads for row in rows],
                "views": [row.views for row in rows],
            }
        context.update(
            dashboard=dashboard,
            chart=chart,
            manages_domains=user.is_staff or managed_domains(user=user).exists(),
        )
        return context
