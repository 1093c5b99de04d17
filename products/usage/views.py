"""Usage and retirement pages: a product's Usage tab, its retirement page (propose,
object, withdraw, proceed) and the portal-wide usage dashboard.

Views parse input, call the selectors in products.usage.selectors and
products.retirement.selectors or the services in products.retirement.services, and
render. A product comes through the visibility rule (a hidden product is a 404); the
services decide who may change what (a refusal is a 403).
"""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import TemplateView

from products.catalog.permissions import can_edit_product, managed_domains
from products.catalog.scope import product_header, product_page
from products.usage.selectors import (
    SCOPES,
    USAGE_DAYS,
    embed_usage,
    product_usage,
    usage_chart_data,
    usage_dashboard,
)
from sharing.choices import Channel


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
            embeds=embed_usage(product=product, days=USAGE_DAYS, with_tenants=can_edit),
            chart=usage_chart_data(usage) if usage.views or usage.reads else None,
            channels=[
                {"channel": channel, "label": label, "reads": usage.by_channel.get(channel, 0)}
                for channel, label in _channel_labels()
                if usage.by_channel.get(channel, 0)
            ],
            **product_header(product=product, active_tab="usage", can_edit=can_edit),
        )
        return context


def _channel_labels():
    return Channel.choices


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
