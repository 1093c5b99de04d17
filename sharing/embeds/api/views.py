"""Embed API: `/api/v1/embeds/` lists the embeds you manage and creates one;
`/api/v1/embeds/<id>/` shows one, DELETE (or POST `disable/`) disables it, `enable/`,
`deny-token/` refuses a token by its jti. `/api/v1/embed-apps/`: host applications and
their public keys (`keys/` adds one, DELETE `keys/<kid>/` removes one). Views parse input
and call the services the pages call."""

import uuid

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from products.catalog.api.views import product_named_in_body
from products.catalog.permissions import managed_domains
from products.definitions.selectors import metric_get_visible
from products.models import Domain, Metric
from sharing.embeds.api.serializers import (
    DenyTokenSerializer,
    EmbedAppCreateSerializer,
    EmbedAppSerializer,
    EmbedCreateSerializer,
    EmbedKeyCreateSerializer,
    EmbedKeySerializer,
    EmbedSerializer,
)
from sharing.embeds.services.apps import (
    can_manage_app,
    embed_app_create,
    embed_app_delete,
    embed_key_add,
    embed_key_remove,
)
from sharing.embeds.services.embeds import (
    can_manage_embed,
    embed_create,
    embed_disable,
    embed_enable,
    embed_token_deny,
)
from sharing.models import Embed, EmbedApp, EmbedKey

EMBED_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)
APP_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
KID = OpenApiParameter("kid", OpenApiTypes.STR, OpenApiParameter.PATH)
NO_EMBED = "There is no such embed."
NO_APP = "There is no such application."


def _managed(user) -> Q:
    return Q(created_by_id=user.pk) | Q(product__domain__in=managed_domains(user=user))


class EmbedViewSet(viewsets.GenericViewSet):
    serializer_class = EmbedSerializer
    queryset = Embed.objects.none()  # for the schema; get_queryset scopes reads
    filter_backends: list = []
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return (
            Embed.objects.filter(_managed(self.request.user))
            .select_related("product__domain", "port", "metric", "created_by")
            .order_by("-created_at", "pk")
        )

    def get_embed(self) -> Embed:
        """An embed you manage; else 404 (whether it exists or not)."""
        embed = (
            Embed.objects.select_related("product__domain", "port", "metric", "created_by")
            .filter(pk=_uuid_or_404(self.kwargs["pk"], NO_EMBED))
            .first()
        )
        if embed is None or not can_manage_embed(user=self.request.user, embed=embed):
            raise NotFound(NO_EMBED)
        return embed

    @extend_schema(description="The embeds you created or whose product you manage.")
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=EmbedCreateSerializer,
        responses={
            201: EmbedSerializer,
            400: OpenApiResponse(description="Bad input; the field's name says where."),
            403: OpenApiResponse(description="You may not share this product's data."),
        },
        description="Create an embed of a metric or of a port's columns. The product's "
        "managers embed, and holders of a grant marked shareable, within their own access: "
        "the embed reads as its creator at every request.",
    )
    def create(self, request):
        body = EmbedCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        key = data.pop("product")
        product = product_named_in_body(user=request.user, key=key)
        metric_key = data.pop("metric", "") or ""
        metric = None
        if metric_key:
            try:
                metric = metric_get_visible(user=request.user, key=metric_key)
            except Metric.DoesNotExist:
                raise ValidationError({"metric": [f"There is no metric {metric_key!r}."]}) from None
        embed = embed_create(
            by=request.user,
            product=product,
            metric=metric,
            port_slug=data.pop("port", "") or None,
            **data,
        )
        return Response(self.get_serializer(embed).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[EMBED_ID])
    def retrieve(self, request, pk: str):
        return Response(self.get_serializer(self.get_embed()).data)

    @extend_schema(
        parameters=[EMBED_ID],
        request=None,
        responses={204: None},
        description="Disable the embed: its next data call is refused.",
    )
    def destroy(self, request, pk: str):
        embed_disable(embed=self.get_embed(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[EMBED_ID], request=None, responses=EmbedSerializer)
    @action(detail=True, methods=["post"])
    def disable(self, request, pk: str):
        embed = embed_disable(embed=self.get_embed(), by=request.user)
        return Response(self.get_serializer(embed).data)

    @extend_schema(parameters=[EMBED_ID], request=None, responses=EmbedSerializer)
    @action(detail=True, methods=["post"])
    def enable(self, request, pk: str):
        embed = embed_enable(embed=self.get_embed(), by=request.user)
        return Response(self.get_serializer(embed).data)

    @extend_schema(
        parameters=[EMBED_ID],
        request=DenyTokenSerializer,
        responses={204: None},
        description="Refuse the token with this jti from its next request on.",
    )
    @action(detail=True, methods=["post"], url_path="deny-token")
    def deny_token(self, request, pk: str):
        body = DenyTokenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        embed_token_deny(embed=self.get_embed(), jti=body.validated_data["jti"], by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _uuid_or_404(value: str, message: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(message) from None


class EmbedAppViewSet(viewsets.GenericViewSet):
    serializer_class = EmbedAppSerializer
    queryset = EmbedApp.objects.none()
    filter_backends: list = []

    def get_queryset(self):
        user = self.request.user
        domains = managed_domains(user=user)
        return (
            EmbedApp.objects.filter(
                Q(domain__in=domains)
                | Q(embed__created_by_id=user.pk)
                | Q(embed__product__domain__in=domains)
            )
            .select_related("domain", "embed")
            .prefetch_related("keys")
            .order_by("name", "pk")
            .distinct()
        )

    def get_app(self) -> EmbedApp:
        try:
            app = EmbedApp.objects.select_related("domain", "embed__product__domain").get(
                pk=int(self.kwargs["pk"])
            )
        except (EmbedApp.DoesNotExist, ValueError):
            raise NotFound(NO_APP) from None
        if not can_manage_app(user=self.request.user, app=app):
            raise NotFound(NO_APP)
        return app

    @extend_schema(description="Host applications you manage, with their public keys.")
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=EmbedAppCreateSerializer,
        responses={
            201: EmbedAppSerializer,
            400: OpenApiResponse(description="Bad input; the field's name says where."),
            403: OpenApiResponse(description="You may not register applications there."),
        },
        description="Register a host application for one embed (its managers) or for "
        "every embed of a domain (the domain's owners and stewards), with its first public "
        "key. The portal keeps public keys only: sign tokens with the private key.",
    )
    def create(self, request):
        body = EmbedAppCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        embed = domain = None
        if data.get("embed"):
            embed = Embed.objects.select_related("product__domain").filter(pk=data["embed"]).first()
            if embed is None or not can_manage_embed(user=request.user, embed=embed):
                raise ValidationError({"embed": [NO_EMBED]})
        if data.get("domain"):
            domain = Domain.objects.filter(slug=data["domain"]).first()
            if domain is None:
                raise ValidationError({"domain": [f"There is no domain {data['domain']!r}."]})
        app = embed_app_create(
            by=request.user,
            name=data["name"],
            description=data.get("description", ""),
            embed=embed,
            domain=domain,
            kid=data["kid"],
            algorithm=data["algorithm"],
            public_key=data["public_key"],
        )
        return Response(self.get_serializer(app).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[APP_ID])
    def retrieve(self, request, pk: str):
        return Response(self.get_serializer(self.get_app()).data)

    @extend_schema(parameters=[APP_ID], request=None, responses={204: None})
    def destroy(self, request, pk: str):
        embed_app_delete(app=self.get_app(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[APP_ID],
        request=EmbedKeyCreateSerializer,
        responses={201: EmbedKeySerializer},
        description="Add a key (rotation: sign with the new key, then remove the old one).",
    )
    @action(detail=True, methods=["post"])
    def keys(self, request, pk: str):
        body = EmbedKeyCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = embed_key_add(app=self.get_app(), by=request.user, **body.validated_data)
        return Response(EmbedKeySerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[APP_ID, KID],
        request=None,
        responses={204: None},
        description="Remove a key: tokens it signed are refused from the next request on.",
    )
    @action(detail=True, methods=["delete"], url_path=r"keys/(?P<kid>[A-Za-z0-9._:-]{1,100})")
    def key_remove(self, request, pk: str, kid: str):
        key = EmbedKey.objects.filter(app=self.get_app(), kid=kid).first()
        if key is None:
            raise NotFound("This application has no such key.")
        embed_key_remove(key=key, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
