"""Delta Sharing management API: shares, their tables and recipients, for the people who
manage them (the share's creator and admins; creating a share takes a domain owner,
steward or admin). The views parse input and call `sharing.delta_sharing.services`, the
same services as the pages. The protocol itself is served under `/delta-sharing/`
(see docs/sharing.md), outside this API and its schema."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from products.catalog.api.views import product_named_in_body
from sharing.delta_sharing.api.serializers import (
    DeltaRecipientCreatedSerializer,
    DeltaRecipientCreateSerializer,
    DeltaRecipientSerializer,
    DeltaShareCreateSerializer,
    DeltaShareDetailSerializer,
    DeltaShareSerializer,
    DeltaShareTableCreateSerializer,
    DeltaShareTableSerializer,
)
from sharing.delta_sharing.services import (
    delta_profile,
    delta_recipient_create,
    delta_recipient_revoke,
    delta_share_create,
    delta_share_delete,
    delta_share_recipients,
    delta_share_table_add,
    delta_share_table_remove,
    delta_share_tables,
    delta_shares_of,
)
from sharing.models import DeltaRecipient, DeltaShare, DeltaShareTable

NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="Share.")
ITEM = OpenApiParameter("item_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def profile_endpoint(request) -> str:
    """The protocol's endpoint as the person managing the share reaches the portal."""
    return request.build_absolute_uri(reverse("delta_sharing:root", kwargs={"rest": ""}))


@extend_schema_view(
    list=extend_schema(description="The shares you manage (admins: every share)."),
    retrieve=extend_schema(
        parameters=[NAME],
        responses=DeltaShareDetailSerializer,
        description="A share, its tables and recipients.",
    ),
    create=extend_schema(
        request=DeltaShareCreateSerializer,
        responses={201: DeltaShareSerializer},
        description="Create a share (domain owners, stewards and admins).",
    ),
    destroy=extend_schema(
        parameters=[NAME],
        description="Delete the share: its recipients' tokens stop working at once.",
    ),
)
class DeltaShareViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    lookup_field = "name"
    lookup_value_regex = r"[-\w]+"
    filter_backends: list = []

    def get_queryset(self):
        return delta_shares_of(user=self.request.user).order_by("name")

    def get_serializer_class(self):
        if self.action == "retrieve":
            return DeltaShareDetailSerializer
        return DeltaShareSerializer

    def get_object(self) -> DeltaShare:
        try:
            share = self.get_queryset().get(name__iexact=self.kwargs["name"])
        except DeltaShare.DoesNotExist:
            raise NotFound("There is no share of that name that you manage.") from None
        return share

    def retrieve(self, request, *args, **kwargs):
        share = self.get_object()
        data = dict(DeltaShareSerializer(share).data)
        data["tables"] = DeltaShareTableSerializer(delta_share_tables(share=share), many=True).data
        data["recipients"] = DeltaRecipientSerializer(
            delta_share_recipients(share=share), many=True
        ).data
        return Response(data)

    def create(self, request, *args, **kwargs):
        body = DeltaShareCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        share = delta_share_create(by=request.user, **body.validated_data)
        share = self.get_queryset().get(pk=share.pk)
        return Response(DeltaShareSerializer(share).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        delta_share_delete(share=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[NAME],
        request=DeltaShareTableCreateSerializer,
        responses={201: DeltaShareTableSerializer},
        description="Add a product's port to the share as `<schema>.<name>`, optionally "
        "narrowed to some columns and rows. Only products whose access you manage; refused "
        "when the share's creator cannot read it (their access decides what recipients read).",
    )
    @action(detail=True, methods=["post"])
    def tables(self, request, name: str):
        share = self.get_object()
        body = DeltaShareTableCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        key = data.pop("product")
        product = product_named_in_body(user=request.user, key=key)
        table = delta_share_table_add(
            share=share, by=request.user, product=product, port=data.pop("port", None), **data
        )
        return Response(DeltaShareTableSerializer(table).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[NAME, ITEM], request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"tables/(?P<item_id>\d+)")
    def table_remove(self, request, name: str, item_id: str):
        share = self.get_object()
        table = DeltaShareTable.objects.filter(share=share, pk=int(item_id)).first()
        if table is None:
            raise NotFound("The share has no such table.")
        table.share = share
        delta_share_table_remove(table=table, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["get"],
        parameters=[NAME],
        responses=DeltaRecipientSerializer(many=True),
        description="The share's recipients (never their tokens).",
    )
    @extend_schema(
        methods=["post"],
        parameters=[NAME],
        request=DeltaRecipientCreateSerializer,
        responses={201: DeltaRecipientCreatedSerializer},
        description="Create a recipient: the answer holds its profile file, with a bearer "
        "token shown this once (only its hash is stored). Give the file to the recipient; "
        "create a new recipient to replace a lost one.",
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def recipients(self, request, name: str):
        share = self.get_object()
        if request.method == "GET":
            return Response(
                DeltaRecipientSerializer(delta_share_recipients(share=share), many=True).data
            )
        body = DeltaRecipientCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        recipient, token = delta_recipient_create(
            share=share, by=request.user, **body.validated_data
        )
        profile = delta_profile(
            recipient=recipient, token=token, endpoint=profile_endpoint(request)
        )
        response = Response(
            {"recipient": DeltaRecipientSerializer(recipient).data, "profile": profile},
            status=status.HTTP_201_CREATED,
        )
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        parameters=[NAME, ITEM],
        request=None,
        responses=DeltaRecipientSerializer,
        description="Revoke the recipient: its token answers 401 from the next request.",
    )
    @action(detail=True, methods=["post"], url_path=r"recipients/(?P<item_id>\d+)/revoke")
    def recipient_revoke(self, request, name: str, item_id: str):
        share = self.get_object()
        recipient = DeltaRecipient.objects.filter(share=share, pk=int(item_id)).first()
        if recipient is None:
            raise NotFound("The share has no such recipient.")
        recipient.share = share
        recipient = delta_recipient_revoke(recipient=recipient, by=request.user)
        return Response(DeltaRecipientSerializer(recipient).data)
