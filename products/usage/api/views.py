"""Usage and retirement API: a product's usage, the usage dashboard, and a product's
retirement (propose, object, withdraw, proceed). Views parse input, call the selectors
and services the pages call, and shape output. A product comes through the visibility
rule (ProductScopedMixin): a product the user may not see is a 404."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from products.catalog.api.views import PRODUCT_KEY_PARENT, ProductScopedMixin
from products.catalog.permissions import can_edit_product
from products.models import RetirementProposal
from products.retirement.services import (
    retirement_object,
    retirement_open_proposal,
    retirement_proceed,
    retirement_propose,
    retirement_withdraw,
)
from products.usage.api.serializers import (
    ProductUsageSerializer,
    RetirementObjectionSerializer,
    RetirementProposalSerializer,
    RetirementProposeSerializer,
    RetirementReasonSerializer,
    RetirementWithdrawSerializer,
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


class RetirementScopedMixin(ProductScopedMixin):
    def proposal_response(self, proposal: RetirementProposal, *, code=status.HTTP_200_OK):
        product = self.get_product()
        proposal.product = product
        context = {
            "request": self.request,
            "show_names": can_edit_product(user=self.request.user, product=product),
        }
        return Response(RetirementProposalSerializer(proposal, context=context).data, status=code)

    def open_proposal(self) -> RetirementProposal:
        proposal = retirement_open_proposal(product=self.get_product())
        if proposal is None:
            raise NotFound(f"{self.get_product().key} has no retirement proposal in progress.")
        proposal.product = self.get_product()
        return proposal


class RetirementView(RetirementScopedMixin, GenericAPIView):
    """GET: the product's latest retirement proposal (in progress or not) with its
    objections and steps; 404 when there was none. POST: propose to retire the product
    (its domain's owners and stewards, admins): its current grantees (and followers) are
    emailed and may object during the notice period."""

    serializer_class = RetirementProposalSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[PRODUCT_KEY_PARENT], responses=RetirementProposalSerializer)
    def get(self, request, product_key: str):
        product = self.get_product()
        proposal = (
            RetirementProposal.objects.filter(product=product)
            .select_related("proposed_by")
            .order_by("-proposed_at", "-pk")
            .first()
        )
        if proposal is None:
            raise NotFound(f"Nobody has proposed to retire {product.key}.")
        return self.proposal_response(proposal)

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=RetirementProposeSerializer,
        responses={201: RetirementProposalSerializer},
    )
    def post(self, request, product_key: str):
        product = self.get_product()
        body = RetirementProposeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        proposal = retirement_propose(product=product, by=request.user, **body.validated_data)
        return self.proposal_response(proposal, code=status.HTTP_201_CREATED)


class RetirementObjectionsView(RetirementScopedMixin, GenericAPIView):
    """Object to the retirement in progress, during its notice period: the product's
    grantees (and followers), once each. The automatic retirement stops; the owners are
    told and decide."""

    serializer_class = RetirementObjectionSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=RetirementReasonSerializer,
        responses={201: RetirementObjectionSerializer},
    )
    def post(self, request, product_key: str):
        proposal = self.open_proposal()
        body = RetirementReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        objection = retirement_object(
            proposal=proposal, by=request.user, reason=body.validated_data["reason"]
        )
        data = RetirementObjectionSerializer(objection, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED)


class RetirementWithdrawView(RetirementScopedMixin, GenericAPIView):
    """Withdraw the retirement in progress (the domain's owners and stewards, admins)."""

    serializer_class = RetirementProposalSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=RetirementWithdrawSerializer,
        responses=RetirementProposalSerializer,
    )
    def post(self, request, product_key: str):
        proposal = self.open_proposal()
        body = RetirementWithdrawSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        proposal = retirement_withdraw(proposal=proposal, by=request.user, **body.validated_data)
        return self.proposal_response(proposal)


class RetirementProceedView(RetirementScopedMixin, GenericAPIView):
    """Go ahead despite objections, once the notice period is over (the domain's owners
    and stewards, admins), with a reason that answers them: the product is deprecated
    now and retired after the grace period."""

    serializer_class = RetirementProposalSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=RetirementReasonSerializer,
        responses=RetirementProposalSerializer,
    )
    def post(self, request, product_key: str):
        proposal = self.open_proposal()
        body = RetirementReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        proposal = retirement_proceed(
            proposal=proposal, by=request.user, reason=body.validated_data["reason"]
        )
        return self.proposal_response(proposal)
