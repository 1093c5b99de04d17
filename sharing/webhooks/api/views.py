"""Webhooks API: `/api/v1/webhooks/` (your subscriptions; admins see all), each one's
deliveries, dead letters (replay one or all), secret rotation and a test event. Views
parse input, call sharing.webhooks services and selectors, and shape output. A
subscription someone may not see is a 404."""

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from sharing.models import WebhookAttempt, WebhookSubscription
from sharing.webhooks.api.serializers import (
    WebhookDeliverySerializer,
    WebhookSubscriptionInputSerializer,
    WebhookSubscriptionSecretSerializer,
    WebhookSubscriptionSerializer,
)
from sharing.webhooks.selectors import (
    webhook_dead_letters_of,
    webhook_deliveries_of,
    webhook_subscription_get,
    webhook_subscriptions_for,
)
from sharing.webhooks.services import (
    webhook_dead_letters_replay,
    webhook_secret_rotate,
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_update,
    webhook_test_send,
)

BAD_INPUT = OpenApiResponse(
    response=OpenApiTypes.OBJECT, description="Bad input: a message per field named."
)
REPLAYED = OpenApiResponse(
    response=OpenApiTypes.OBJECT, description='{"replayed": <how many deliveries>}'
)


def _with_log(deliveries):
    return deliveries.prefetch_related(
        Prefetch("log", queryset=WebhookAttempt.objects.order_by("number"))
    )


@extend_schema_view(
    list=extend_schema(description="Your webhook subscriptions (admins: everyone's)."),
    retrieve=extend_schema(description="A subscription and its health."),
    create=extend_schema(
        request=WebhookSubscriptionInputSerializer,
        responses={201: WebhookSubscriptionSecretSerializer, 400: BAD_INPUT},
        description="Subscribe a URL to the events you may see that match the filters. "
        "The answer carries the signing secret, shown this once.",
    ),
    partial_update=extend_schema(
        request=WebhookSubscriptionInputSerializer,
        responses={200: WebhookSubscriptionSerializer, 400: BAD_INPUT},
        description="Change fields; `active: false` pauses, `true` resumes and sends what "
        "waited, in order.",
    ),
    destroy=extend_schema(
        responses={204: None}, description="Delete the subscription and its delivery log."
    ),
)
class WebhookSubscriptionViewSet(viewsets.GenericViewSet):
    serializer_class = WebhookSubscriptionSerializer
    queryset = WebhookSubscription.objects.none()  # for the schema; the selector scopes reads
    filter_backends: list = []
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_object(self) -> WebhookSubscription:
        try:
            return webhook_subscription_get(
                user=self.request.user, subscription_id=int(self.kwargs["pk"])
            )
        except (WebhookSubscription.DoesNotExist, ValueError):
            raise NotFound("There is no such webhook subscription.") from None

    def list(self, request):
        page = self.paginate_queryset(webhook_subscriptions_for(user=request.user))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request):
        body = WebhookSubscriptionInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        created = webhook_subscription_create(owner=request.user, **body.validated_data)
        return Response(self._with_secret(created), status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk: str):
        return Response(self.get_serializer(self.get_object()).data)

    def partial_update(self, request, pk: str):
        subscription = self.get_object()
        body = WebhookSubscriptionInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        subscription = webhook_subscription_update(
            subscription=subscription, by=request.user, **body.validated_data
        )
        return Response(self.get_serializer(subscription).data)

    def destroy(self, request, pk: str):
        webhook_subscription_delete(subscription=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _with_secret(self, created) -> dict:
        created.subscription.secret = created.secret
        return WebhookSubscriptionSecretSerializer(
            created.subscription, context=self.get_serializer_context()
        ).data

    @extend_schema(
        request=None,
        responses={200: WebhookSubscriptionSecretSerializer},
        description="A new signing secret, shown this once; the old one stops at once.",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk: str):
        created = webhook_secret_rotate(subscription=self.get_object(), by=request.user)
        return Response(self._with_secret(created))

    @extend_schema(
        request=None,
        responses={202: WebhookDeliverySerializer},
        description="Queue a test event (type portal.webhook.test) behind the pending ones.",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk: str):
        delivery = webhook_test_send(subscription=self.get_object(), by=request.user)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses=WebhookDeliverySerializer(many=True),
        description="The subscription's deliveries, newest first, each with its log of "
        "tries (status, latency, response code, error). `?status=pending|succeeded|dead`.",
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk: str):
        wanted = request.query_params.get("status") or None
        if wanted not in (None, "pending", "succeeded", "dead"):
            return Response(
                {"status": ["Use pending, succeeded or dead."]}, status=status.HTTP_400_BAD_REQUEST
            )
        deliveries = webhook_deliveries_of(subscription=self.get_object(), status=wanted)
        page = self.paginate_queryset(_with_log(deliveries))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        responses=WebhookDeliverySerializer(many=True),
        description="Dead letters: deliveries that failed their last try, newest first.",
    )
    @action(detail=True, methods=["get"], url_path="dead-letters")
    def dead_letters(self, request, pk: str):
        page = self.paginate_queryset(
            _with_log(webhook_dead_letters_of(subscription=self.get_object()))
        )
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses={202: REPLAYED},
        description="Send one dead letter again (pending, its tries counted afresh).",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"dead-letters/(?P<delivery_id>[0-9]+)/replay",
        url_name="dead-letter-replay",
    )
    def dead_letter_replay(self, request, pk: str, delivery_id: str):
        count = webhook_dead_letters_replay(
            subscription=self.get_object(), by=request.user, delivery_ids=[int(delivery_id)]
        )
        if not count:
            raise NotFound("There is no such dead letter.")
        return Response({"replayed": count}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None, responses={202: REPLAYED}, description="Send every dead letter again."
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="dead-letters/replay-all",
        url_name="dead-letters-replay-all",
    )
    def dead_letters_replay_all(self, request, pk: str):
        count = webhook_dead_letters_replay(subscription=self.get_object(), by=request.user)
        return Response({"replayed": count}, status=status.HTTP_202_ACCEPTED)
