"""The retirement banner of a product's pages (overview and Usage tab), read here (the
template layer) so that those pages, of features below retirement, need not import it."""

from django import template

from products.retirement.selectors import retirement_banner as retirement_banner_context

register = template.Library()


@register.inclusion_tag("products/_retirement_banner.html")
def retirement_banner(product, can_edit: bool) -> dict:
    """The proposal in progress (everyone sees it) or, to the product's editors, that it
    is unused and may be proposed for retirement. One query, two for editors of a product
    without a proposal."""
    return {"product": product, **retirement_banner_context(product=product, can_edit=can_edit)}
