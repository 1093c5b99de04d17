"""Share-link API: `/api/v1/share-links/` lists your links and creates one (the token is
in that answer only); `/api/v1/share-links/<id>/` shows one, DELETE or POST `revoke/`
revokes it. Views parse input and call the services the pages call."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.reverse import reverse

from products.catalog.api.views import product_named_in_body
from sharing.models import ShareLink
from sharing.share_links.api.serializers import (
    RevokeSerializer,
    ShareLinkCreatedSerializer,
    ShareLinkCreateSerializer,
    ShareLinkSerializer,
)
from sharing.share_links.services import (
    can_revoke,
    share_link_create,
    share_link_revoke,
    share_links_of_user,
)

ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


class ShareLinkViewSet(viewsets.GenericViewSet):
    serializer_class = ShareLinkSerializer
    queryset = ShareLink.objects.none()  # for the schema; get_queryset scopes reads
    filter_backends: list = []

    def get_queryset(self):
        return share_links_of_user(user=self.request.user)

    def get_link(self) -> ShareLink:
        """Your link, or one of a product whose access you manage; else 404."""
        try:
            link = ShareLink.objects.select_related(
                "product__domain", "port", "export_run", "revoked_by"
            ).get(pk=int(self.kwargs["pk"]))
        except (ShareLink.DoesNotExist, ValueError):
            raise NotFound("There is no such share link.") from None
        if not can_revoke(user=self.request.user, link=link):
            raise NotFound("There is no such share link.")
        return link

    @extend_schema(description="Your share links, newest first, with their use.")
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset().select_related("revoked_by"))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=ShareLinkCreateSerializer,
        responses={
            201: ShareLinkCreatedSerializer,
            400: OpenApiResponse(description="Bad input; the field's name says where."),
            403: OpenApiResponse(description="You may not share this product's data."),
        },
        description="Create a share link to a product's rows (within your own access) or "
        "to an export run's file. Only admins, the domain's owners and stewards, and "
        "holders of a grant marked shareable share. The answer holds the token and URL: "
        "they are never shown again (only the token's SHA-256 is kept).",
    )
    def create(self, request):
        body = ShareLinkCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        key = data.pop("product")
        product = product_named_in_body(user=request.user, key=key)
        link, token = share_link_create(
            by=request.user, product=product, port_slug=data.pop("port", None) or None, **data
        )
        link.token = token
        link.url = reverse("sharing:share-link-landing", kwargs={"token": token}, request=request)
        return Response(ShareLinkCreatedSerializer(link).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[ID])
    def retrieve(self, request, pk: str):
        return Response(self.get_serializer(self.get_link()).data)

    @extend_schema(
        parameters=[ID],
        request=None,
        responses={204: None},
        description="Revoke the link: its next use is a 404.",
    )
    def destroy(self, request, pk: str):
        share_link_revoke(link=self.get_link(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[ID], request=RevokeSerializer, responses=ShareLinkSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk: str):
        body = RevokeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        link = share_link_revoke(
            link=self.get_link(), by=request.user, reason=body.validated_data.get("reason", "")
        )
        return Response(self.get_serializer(link).data)
