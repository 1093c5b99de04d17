"""Template helpers of feedback, announcements and following: badges, the announcement
banner of a product's pages (one query), the overview's feedback card (two queries), and
a readable duration."""

from django import template

from portal.templatetags.portal_tags import choice_badge
from products.choices import AnnouncementKind, FeedbackKind, FeedbackStatus
from products.feedback.services.announcements import announcements_active
from products.feedback.services.feedback import feedback_summary
from products.feedback.services.follows import product_follow_state

register = template.Library()


@register.simple_tag
def feedback_status_badge(status: str):
    return choice_badge(FeedbackStatus, status, "feedback")


@register.simple_tag
def feedback_kind_badge(kind: str):
    return choice_badge(FeedbackKind, kind, "fkind")


@register.simple_tag
def announcement_kind_badge(kind: str):
    return choice_badge(AnnouncementKind, kind, "announce")


@register.filter
def hours_human(hours) -> str:
    """3.5 -> '3.5 hours', 50 -> '2.1 days', 0.2 -> 'under an hour'."""
    if hours is None:
        return ""
    hours = float(hours)
    if hours < 1:
        return "under an hour"
    if hours < 48:
        value = round(hours, 1)
        return f"{value:g} hour{'s' if value != 1 else ''}"
    return f"{round(hours / 24, 1):g} days"


@register.filter
def hours_since(later, earlier):
    """Hours from `earlier` to `later` (for hours_human); None when either is missing."""
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds() / 3600


@register.inclusion_tag("products/_announcement_banner.html")
def announcement_banner(product):
    """The product's active announcements, most urgent first."""

    return {"product": product, "announcements": announcements_active(product=product)}


@register.inclusion_tag("products/_feedback_card.html", takes_context=True)
def feedback_card(context, product):
    """The overview's card: follow the product, ask or report, how fast the team answers."""

    request = context["request"]
    return {
        "product": product,
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "follow": product_follow_state(product=product, user=request.user),
        "summary": feedback_summary(product=product),
    }
