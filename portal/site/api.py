"""Notifications API: the signed-in user's in-portal notifications, and marking them
read. The same services as the notifications page (portal.core.notifications)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.core.notifications import (
    notifications_for,
    notifications_mark_read,
    notifications_unread_count,
)
from portal.models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="Where it points, in the portal.")
    product = serializers.SerializerMethodField()
    unread = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "title", "body", "url", "product", "created_at", "read_at", "unread"]
        read_only_fields = fields

    def get_url(self, notification: Notification) -> str:
        request = self.context.get("request")
        path = notification.url
        return request.build_absolute_uri(path) if request is not None and path else path

    def get_product(self, notification: Notification) -> str | None:
        product = notification.product
        return product.key if product is not None else None

    def get_unread(self, notification: Notification) -> bool:
        return notification.read_at is None


class NotificationsReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        max_length=1000,
        help_text="The notifications to mark read; left out: every unread one.",
    )

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["This field cannot be set here."] for name in unknown}
                )
        return super().to_internal_value(data)


class NotificationsReadResultSerializer(serializers.Serializer):
    marked = serializers.IntegerField()
    unread = serializers.IntegerField()


UNREAD = OpenApiParameter(
    "unread", OpenApiTypes.BOOL, OpenApiParameter.QUERY, description="`true`: unread only."
)


@extend_schema_view(list=extend_schema(parameters=[UNREAD]))
class NotificationViewSet(viewsets.GenericViewSet):
    """Your notifications, newest first; the response also says how many are unread."""

    serializer_class = NotificationSerializer
    filter_backends: list = []

    def get_queryset(self):
        unread = self.request.query_params.get("unread", "").lower() in ("1", "true", "yes")
        return notifications_for(user=self.request.user, unread=unread)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        response = self.get_paginated_response(self.get_serializer(page, many=True).data)
        response.data["unread_count"] = notifications_unread_count(user=request.user)
        return response

    @extend_schema(
        request=NotificationsReadSerializer,
        responses=NotificationsReadResultSerializer,
        description="Mark notifications read: the `ids` given (yours only), or all.",
    )
    @action(detail=False, methods=["post"])
    def read(self, request):
        body = NotificationsReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        marked = notifications_mark_read(user=request.user, ids=body.validated_data.get("ids"))
        return Response(
            {"marked": marked, "unread": notifications_unread_count(user=request.user)},
            status=status.HTTP_200_OK,
        )
