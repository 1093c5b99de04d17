"""The notices of a product's pages in one area, most severe first: open incidents, then
retirement, then the owners' announcements. The first shows in full; the others fold
into "N more notices", so a tab opens on its content rather than on three banners."""

from dataclasses import dataclass, field

from django import template

from products.feedback.services.announcements import announcements_active
from products.retirement.selectors import retirement_banner

register = template.Library()

# The tabs that show the retirement notice (its "unused" hint is for the overview and
# the Usage tab, where the owners look at use); incidents and announcements show on all.
RETIREMENT_TABS = ("overview", "usage")


@dataclass
class Notice:
    kind: str  # incident | retirement | announcement
    label: str  # how the folded summary names it
    context: dict = field(default_factory=dict)


@register.inclusion_tag("products/_product_notices.html", takes_context=True)
def product_notices(context, product, open_incidents, quality_url: str) -> dict:
    """One query for announcements, and the retirement banner's on the tabs that show it."""
    notices: list[Notice] = []
    if open_incidents:
        count = len(open_incidents)
        label = "an open incident" if count == 1 else f"{count} open incidents"
        notices.append(Notice("incident", label))
    if context.get("active_tab") in RETIREMENT_TABS:
        retirement = retirement_banner(product=product, can_edit=bool(context.get("can_edit")))
        if retirement["retirement_proposal"] or retirement["retirement_flagged"]:
            label = "retirement" if retirement["retirement_proposal"] else "no reads lately"
            notices.append(Notice("retirement", label, retirement))
    for announcement in announcements_active(product=product):
        notices.append(
            Notice(
                "announcement",
                announcement.get_kind_display().lower(),
                {"announcements": [announcement]},
            )
        )
    return {
        "product": product,
        "open_incidents": open_incidents,
        "quality_url": quality_url,
        "notices": notices,
        "more_labels": ", ".join(notice.label for notice in notices[1:]),
    }
