"""One product scope for pages: every page of a product (`/products/<domain>/<product>/...`
and the sharing pages under it) resolves and authorises its product here, once, and takes
its header from here. API views have the same in products.catalog.api.views.ProductScopedMixin.

- `product_page`: the product through the visibility rule; a product the user may not see
  is a 404, exactly like a missing one. With `edit=True`, a 403 for someone who may not
  change it (products.catalog.permissions says who may and in which words).
- `product_page_port`: one of its output ports, or a 404.
- `product_header`: what templates/products/_product_header.html needs from the view
  (breadcrumb, tabs); the trust badge and incident banner come from a template tag.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest

from products.catalog.permissions import require_product_editor
from products.catalog.selectors import port_for, product_get_visible
from products.models import DataProduct, OutputPort

PRODUCT_NOT_FOUND = "No such product, or you may not see it."

# A queued run (schema refresh, checks, export) older than this probably has no worker to
# pick it up: the pages that poll its progress say so.
QUEUED_TOO_LONG_SECONDS = 30


def product_page(
    request: HttpRequest, domain_slug: str, product_slug: str, *, edit: bool = False
) -> DataProduct:
    """The product of a page, with its domain, tags and owners. Http404 when it is missing
    or the user may not see it; with `edit`, PermissionDenied when they may not change it."""
    try:
        product = product_get_visible(
            user=request.user, domain_slug=domain_slug, product_slug=product_slug
        )
    except DataProduct.DoesNotExist:
        raise Http404(PRODUCT_NOT_FOUND) from None
    if edit:
        require_product_editor(user=request.user, product=product)
    return product


def product_page_port(product: DataProduct, port_slug: str) -> OutputPort:
    """The product's port `port_slug` (with its source, its product set), or Http404."""
    port = port_for(product=product, slug=port_slug) if port_slug else None
    if port is None:
        raise Http404(f"{product.key} has no output port {port_slug!r}.")
    return port


def product_header(
    *,
    product: DataProduct,
    active_tab: str | None = None,
    crumb: str | None = None,
    can_edit: bool | None = None,
) -> dict:
    """The context of a product page's header (templates/products/_product_header.html):
    the product, the tab it is on and the last crumb of its breadcrumb; `can_edit` shows
    the "Edit product" button on the overview. The header's trust score (badge) and
    unresolved incidents (banner, tab alert) come from the `product_trust` template tag,
    so that pages of features below trust show them without importing trust."""
    context = {"product": product}
    if active_tab is not None:
        context["active_tab"] = active_tab
    if crumb is not None:
        context["crumb"] = crumb
    if can_edit is not None:
        context["can_edit"] = can_edit
    return context
