"""How every page shows a moment, a person and the main navigation, the same way
everywhere (issue 15, point 10):

- `{{ moment|when }}`: relative time ("3 hours ago", "in 2 days") in a
  `<time datetime="ISO 8601">` element, the exact local time in its title (on hover);
  `{{ moment|when:"exact" }}` the other way round, for times a person plans by (the next
  runs of a schedule). CSV files and the API keep ISO 8601.
- `{{ user|person }}`: the display name, full name falling back to the username.
- `{% main_nav as nav %}`: which links of the top bar this person can use.
"""

from datetime import date, datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

from portal.core.cron import cron_describe
from portal.core.people import display_name
from products.choices import MANAGING_ROLES
from products.models import DomainMembership

register = template.Library()

EXACT_DATETIME = "D j M Y, H:i T"  # Sat 5 Dec 2026, 14:03 UTC
EXACT_DATE = "j M Y"  # 5 Dec 2026


def _relative_datetime(moment: datetime, now: datetime) -> str:
    seconds = (now - moment).total_seconds()
    if abs(seconds) < 60:
        return "just now"
    if seconds > 0:
        return f"{timesince(moment, now, depth=1)} ago"
    return f"in {timeuntil(moment, now, depth=1)}"


def _relative_date(day: date, today: date) -> str:
    days = (today - day).days
    if days == 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days == -1:
        return "tomorrow"
    if days > 0:
        return f"{timesince(day, today, depth=1)} ago"
    return f"in {timeuntil(day, today, depth=1)}"


def when_parts(value) -> tuple[str, str, str] | None:
    """(ISO 8601, relative words, exact local time) of a datetime or date, or None."""
    if not value:
        return None
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value, timezone.get_current_timezone())
        local = timezone.localtime(value)
        return (
            value.isoformat(),
            _relative_datetime(value, timezone.now()),
            date_format(local, EXACT_DATETIME),
        )
    if isinstance(value, date):
        today = timezone.localdate()
        return value.isoformat(), _relative_date(value, today), date_format(value, EXACT_DATE)
    return None


@register.filter
def when(value, style: str = "relative"):
    """A moment as `<time datetime="…" title="exact">3 hours ago</time>`; with "exact",
    the exact time shown and the relative one in the title. Empty for no moment."""
    parts = when_parts(value)
    if parts is None:
        return ""
    iso, relative, exact = parts
    shown, hover = (exact, relative) if style == "exact" else (relative, exact)
    return format_html('<time datetime="{}" title="{}">{}</time>', iso, hover, shown)


@register.filter
def person(user) -> str:
    """A person's display name: their full name, else their username; "" for nobody
    (so `|default:"a former member"` reads naturally)."""
    return display_name(user)


@register.simple_tag(takes_context=True)
def main_nav(context) -> dict[str, bool]:
    """Which links of the top bar the signed-in person can use (one query, once per
    request): Delta Sharing creates shares for admins and domain owners and stewards
    (sharing.delta_sharing.services.can_use_delta_sharing), the usage dashboard and the
    audit are for the people who run products (domain members) and admins."""
    request = context.get("request")
    cached = getattr(request, "_main_nav", None)
    if cached is not None:
        return cached
    user = context.get("user")
    nav = {"delta_sharing": False, "usage": False, "admin": False, "grants": False}
    if user is not None and user.is_authenticated:
        if user.is_staff:
            nav = {"delta_sharing": True, "usage": True, "admin": True, "grants": True}
        else:
            roles = set(
                DomainMembership.objects.filter(user_id=user.pk).values_list("role", flat=True)
            )
            nav["delta_sharing"] = bool(roles & set(MANAGING_ROLES))
            # The grants page (sharing.access.admin_views) serves admins and domain managers.
            nav["grants"] = nav["delta_sharing"]
            nav["usage"] = bool(roles)
    if request is not None:
        request._main_nav = nav
    return nav


@register.filter
def schedule_in_words(expression: str, tz: str = "UTC"):
    """A cron schedule in words ("every weekday at 07:30 Europe/Brussels"), with the
    expression itself on hover; a shape it cannot say is shown as written."""
    words = cron_describe(expression, tz=tz or "UTC")
    if words == expression:
        return format_html("<code>{}</code> in {}", expression, tz or "UTC")
    return format_html('<span title="cron: {}">{}</span>', expression, words)
