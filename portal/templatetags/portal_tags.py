from django import template
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from portal.core.json_values import is_number
from portal.core.markdown import render_markdown
from products.choices import Classification, LifecycleStatus, RunStatus

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str | None):
    """Render Markdown written by people, sanitised (see portal.core.markdown)."""
    return render_markdown(text)


def choice_badge(choices, value: str, css: str, *, empty_label: str = "") -> str:
    """A choice's label as a badge with class `badge-<css>-<value>`; unknown values show
    as they are, empty ones as `empty_label`."""
    try:
        label = choices(value).label
    except ValueError:
        label = value or empty_label
    return format_html('<span class="badge badge-{}-{}">{}</span>', css, value or "none", label)


@register.simple_tag(takes_context=True)
def data_rows(context, rows, null_class: str = "muted"):
    """The `<tr>` rows of a table of data, each value shown as `{{ value }}` would show it
    (local time, localized, escaped) and None as "null". One call for the whole table:
    a data preview has ~1,500 cells, and a template loop per cell cost it ~30 ms."""
    null = f'<td><span class="{conditional_escape(null_class)}">null</span></td>'
    return mark_safe(  # noqa: S308 - every value is escaped above
        "\n".join(
            "<tr>"
            + "".join(
                null
                if value is None
                else ('<td class="num">' if is_number(value) else "<td>")
                + conditional_escape(
                    localize(timezone.template_localtime(value, use_tz=context.use_tz))
                )
                + "</td>"
                for value in row
            )
            + "</tr>"
            for row in rows
        )
    )


@register.simple_tag
def status_badge(status: str):
    """A product's lifecycle status as a coloured badge."""
    return choice_badge(LifecycleStatus, status, "status")


@register.simple_tag
def classification_badge(classification: str):
    return choice_badge(Classification, classification, "class")


@register.simple_tag
def run_badge(status: str):
    return choice_badge(RunStatus, status, "run")


@register.filter
def ago(value):
    """'just now' for the last minute, else '3 minutes ago' ('0 minutes ago' reads badly).
    Pages show moments with `|when` (portal_display): relative, the exact time on hover."""
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"
