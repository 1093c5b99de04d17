"""Glossary and metric blocks other pages include: a product's definitions (its terms and
metrics) on the product page, a column's terms on the column's edit page, and a badge for
a term's status."""

from decimal import Decimal

from django import template

from portal.templatetags.portal_tags import choice_badge
from products.choices import TermStatus
from products.definitions import selectors
from products.definitions.forms import TermLinkForm

register = template.Library()


@register.filter
def metric_number(value) -> str:
    """1234567.891 as "1,234,567.891", 75.0 as "75", 0.123456 as "0.1235"."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@register.filter
def row_values(row: dict, names: list[str]) -> list:
    """The row's values of `names`, in order (a metric's dimension values)."""
    return [row.get(name) for name in names]


@register.simple_tag
def term_status_badge(status: str):
    return choice_badge(TermStatus, status, "term")


@register.inclusion_tag("products/_product_definitions.html", takes_context=True)
def product_definitions(context, product):
    """The product's glossary terms (its own and its columns') and its metrics: one
    query, whatever the number of ports, columns, terms and metrics."""
    found = selectors.product_definitions(product=product, user=context["request"].user)
    return {
        "product": product,
        "terms": found.terms,
        "metrics": found.metrics,
        "can_edit": context.get("can_edit", False),
    }


@register.inclusion_tag("products/_column_terms.html", takes_context=True)
def column_terms(context, column, product):
    """On a column's edit page: the terms linked to it, and a form to link another."""
    request = context["request"]
    return {
        "column": column,
        "product": product,
        "terms": selectors.terms_of_column(column=column, user=request.user),
        "form": TermLinkForm(terms=selectors.terms_linkable(user=request.user)),
        "csrf_token": context.get("csrf_token"),
    }
