"""Glossary and metric blocks other pages include: a product's definitions (its terms and
metrics) on the product page, a column's terms on the column's edit page, and a badge for
a term's status."""

from django import template

from portal.templatetags.portal_tags import choice_badge
from products.choices import TermStatus
from products.definitions_forms import TermLinkForm
from products.definitions_selectors import (
    metrics_of_product,
    terms_linkable,
    terms_of_column,
    terms_of_product,
)

register = template.Library()


@register.simple_tag
def term_status_badge(status: str):
    return choice_badge(TermStatus, status, "term")


@register.inclusion_tag("products/_product_definitions.html", takes_context=True)
def product_definitions(context, product):
    """The product's glossary terms (its own and its columns') and its metrics: two
    queries, whatever the number of ports and columns."""
    user = context["request"].user
    return {
        "product": product,
        "terms": terms_of_product(product=product, user=user),
        "metrics": metrics_of_product(product=product),
        "can_edit": context.get("can_edit", False),
    }


@register.inclusion_tag("products/_column_terms.html", takes_context=True)
def column_terms(context, column, product):
    """On a column's edit page: the terms linked to it, and a form to link another."""
    request = context["request"]
    return {
        "column": column,
        "product": product,
        "terms": terms_of_column(column=column, user=request.user),
        "form": TermLinkForm(terms=terms_linkable(user=request.user)),
        "csrf_token": context.get("csrf_token"),
    }
