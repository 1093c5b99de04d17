"""The retirement API: a product's proposal, objections, withdrawal and decision."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from products.catalog.api.views import PRODUCT_KEY_PARENT, ProductScopedMixin
from products.catalog.permissions import can_edit_product
from products.models import RetirementProposal
from products.retirement.api.serializers import (
    RetirementObjectionSerializer,
    RetirementProposalSerializer,
    RetirementProposeSerializer,
    RetirementReasonSerializer,
    RetirementWithdrawSerializer,
)
from products.retirement.services import (
    retirement_object,
    retirement_open_proposal,
    retirement_proceed,
    retirement_propose,
    retirement_withdraw,
)


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
