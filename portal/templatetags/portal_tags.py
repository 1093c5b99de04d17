from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from portal.markdown import render_markdown
from products.choices import Classification, LifecycleStatus, RunStatus

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str | None):
    """Render Markdown written by people, sanitised (see portal.markdown)."""
    return render_markdown(text)


@register.simple_tag
def status_badge(status: str):
    """A product's lifecycle status as a coloured badge."""
    try:
        label = LifecycleStatus(status).label
    except ValueError:
        label = status
    return format_html('<span class="badge badge-status-{}">{}</span>', status, label)


@register.simple_tag
def classification_badge(classification: str):
    try:
        label = Classification(classification).label
    except ValueError:
        label = classification
    return format_html('<span class="badge badge-class-{}">{}</span>', classification, label)


@register.simple_tag
def run_badge(status: str):
    try:
        label = RunStatus(status).label
    except ValueError:
        label = status
    return format_html('<span class="badge badge-run-{}">{}</span>', status, label)


@register.filter
def ago(value):
    """'just now' for the last minute, else '3 minutes ago' ('0 minutes ago' reads badly)."""
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"
