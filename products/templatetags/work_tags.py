"""What waits on a product's managers, shown in the product's header (the count of pending
requests on the Access tab). Read here, the template layer, so that the pages of every
feature show it without importing access."""

from django import template

from portal.site.work import access_requests_pending_count

register = template.Library()


@register.simple_tag(takes_context=True)
def pending_requests_count(context, product) -> int:
    """The product's pending access requests for the people who decide them (0 for
    everyone else). One query."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return access_requests_pending_count(user=user, product=product)
