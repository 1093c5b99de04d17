"""Row filters on pages: `{{ grant.row_filter|filter_in_words }}` reads
"country is BE or NL and amount is at least 10" (sharing.access.filters)."""

from django import template

from sharing.access.filters import filter_in_words as _filter_in_words

register = template.Library()


@register.filter
def filter_in_words(row_filter) -> str:
    """A stored row filter (or JSON text, or clauses) as one sentence; "" for none."""
    return _filter_in_words(row_filter or None)
