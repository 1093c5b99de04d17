"""What product pages say about a port's columns for their owners."""

from django import template

from products.catalog.personal_data import personal_data_message, personal_data_suggestion

register = template.Library()


@register.simple_tag
def personal_data_for(column):
    """The personal-data hint for a column whose classification is below what its name
    suggests, else None."""
    return personal_data_suggestion(column.name, column.classification)


@register.simple_tag
def personal_data_note(columns) -> str:
    """One sentence naming the columns that look like personal data, "" if none."""
    return personal_data_message(columns)
