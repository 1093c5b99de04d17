"""Usage and retirement API: a product's usage, the usage dashboard, and a product's
retirement (propose, object, withdraw, proceed). Views parse input, call the selectors
and services the pages call, and shape output. A product comes through the visibility
rule (ProductScopedMixin): a product the user may not see is a 404."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from products.catalog.api.views import PRODUCT_KEY_PARENT, ProductScopedMixin
from products.catalog.permissions import can_edit_product
from products.usage.api.serializers import (
    ProductUsageSerializer,
    UsageDashboardSerializer,
)
from products.usage.selectors import (
    MAX_DAYS,
    MIN_DAYS,
    SCOPES,
    USAGE_DAYS,
    product_usage,
    usage_dashboard,
)

DAYS = OpenApiParameter(
    "days",
    OpenApiTypes.INT,
    OpenApiParameter.QUERY,
    description=f"Days of history, ending today (UTC): {MIN_DAYS} to {MAX_DAYS}, "
    f"default {USAGE_DAYS}.",
)
SCOPE = OpenApiParameter(
    "scope",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    enum=list(SCOPES),
    description="`all`: every product you may see (default); `mine`: those of the "
    "domains you own or steward.",
)


def _days(request) -> int:
    raw = request.query_params.get("days", "")
    if raw == "":
        return USAGE_DAYS
    try:
        days = int(raw)
    except ValueError:
        raise ValidationError(
            {"days": [f"Give a whole number of days, {MIN_DAYS} to {MAX_DAYS}."]}
        ) from None
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValidationError({"days": [f"Between {MIN_DAYS} and {MAX_DAYS} days."]})
    return days


class ProductUsageView(ProductScopedMixin, GenericAPIView):
    """Page views and data reads of the product per day, with distinct viewers and
    readers, reads by channel and totals. Anyone who may see the product sees the
    numbers; the readers' names are for its editors only."""

    serializer_class = ProductUsageSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[PRODUCT_KEY_PARENT, DAYS], responses=ProductUsageSerializer)
    def get(self, request, product_key: str):
        product = self.get_product()
        days = _days(request)
        with_readers = can_edit_product(user=request.user, product=product)
        usage = product_usage(product=product, days=days, with_readers=with_readers)
        return Response(ProductUsageSerializer(usage, context={"request": request}).data)


class UsageDashboardView(GenericAPIView):
    """The most used products (last 30 days), the fastest growing (against the 30 days
    before) and the unused (no read in 90 days), among the products you may see, as of
    the latest hourly computation (`as_of`)."""

    serializer_class = UsageDashboardSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[SCOPE], responses=UsageDashboardSerializer)
    def get(self, request):
        scope = request.query_params.get("scope", "all")
        if scope not in SCOPES:
            raise ValidationError({"scope": [f"One of: {', '.join(SCOPES)}."]})
        dashboard = usage_dashboard(user=request.user, scope=scope)
        data = {
            "scope": dashboard.scope,
            "as_of": dashboard.as_of,
            "window_days": dashboard.window_days,
            "recent_start": dashboard.recent_start,
            "previous_start": dashboard.previous_start,
            "end": dashboard.end,
            "most_used": dashboard.most_used,
            "fastest_growing": dashboard.fastest_growing,
            "unused": {
                "count": dashboard.unused_count,
                "days": dashboard.unused_days,
                "products": dashboard.unused,
            },
        }
        return Response(UsageDashboardSerializer(data, context={"request": request}).data)
