"""Template helpers that keep pages within the Content Security Policy (no inline
script, no inline style): plotly.js with its stylesheets, and meter widths as classes."""

from django import template
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from portal.core.plotly_assets import ASSET_DIR, PLOTLY_BUNDLE, manifest

register = template.Library()


@register.simple_tag
def plotly_library() -> SafeString:
    """plotly.js and the stylesheets that stop it injecting <style> elements, for a page
    that draws its own charts (the embed page)."""
    links = format_html_join(
        "\n",
        '<link rel="stylesheet" id="{}"{} href="{}">',
        (
            (
                sheet["id"],
                format_html(' class="{}"', sheet["class"]) if sheet["class"] else "",
                static(f"{ASSET_DIR}/{sheet['file']}"),
            )
            for sheet in manifest()["sheets"]
        ),
    )
    return format_html('{}\n<script src="{}" defer></script>', links, static(PLOTLY_BUNDLE))


@register.simple_tag
def plotly_assets() -> SafeString:
    """plotly.js (plotly_library) and js/charts.js, which draws every
    `[data-plotly-figure]` chart of the page from its JSON (portal.core.charts). Once per
    page, before or after the chart containers."""
    return format_html(
        '{}\n<script src="{}" defer></script>', plotly_library(), static("js/charts.js")
    )


@register.filter
def meter_width(value) -> str:
    """The class that fills a meter to `value` percent (0-100, rounded): meter-w-<n>."""
    try:
        percent = round(float(value))
    except (TypeError, ValueError):
        percent = 0
    return f"meter-w-{min(100, max(0, percent))}"
