"""Shapes of the webhooks API. Output serializers turn subscriptions, deliveries and
attempts into JSON; the input serializer only parses a body, and the view hands the
values to a service, which holds the rules (each bad field named, 400)."""

from rest_framework import serializers
from rest_framework.reverse import reverse

from products.catalog.api.serializers import InputSerializer
from sharing.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

EVENT_TYPES_HELP = (
    "Event types (see portal.core.events: `portal.product.published`...) or a prefix "
    "ending in `.*` (`portal.access.*`)."
)


class WebhookSubscriptionInputSerializer(InputSerializer):
    name = serializers.CharField(max_length=120)
    target_url = serializers.CharField(
        max_length=500,
        help_text="An https URL on a public address (loopback and private addresses only "
        "when the portal allows them).",
    )
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=100, help_text=EVENT_TYPES_HELP
    )
    product = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, help_text="A product key: sales.orders."
    )
    domain = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, help_text="A domain slug: sales."
    )
    active = serializers.BooleanField(required=False, help_text="False: paused.")


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    product = serializers.CharField(source="product.key", read_only=True, allow_null=True)
    domain = serializers.CharField(source="domain.slug", read_only=True, allow_null=True)
    active = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    deliveries_url = serializers.SerializerMethodField()
    dead_letters_url = serializers.SerializerMethodField()

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "url",
            "name",
            "owner",
            "target_url",
            "event_types",
            "product",
            "domain",
            "active",
            "status",
            "paused_reason",
            "paused_at",
            "failing_since",
            "last_attempt_at",
            "last_success_at",
            "created_at",
            "updated_at",
            "deliveries_url",
            "dead_letters_url",
        ]
        read_only_fields = fields

    def get_active(self, subscription) -> bool:
        return subscription.status == "active"

    def _link(self, name: str, subscription) -> str:
        return reverse(name, args=[subscription.pk], request=self.context.get("request"))

    def get_url(self, subscription) -> str:
        return self._link("webhook-detail", subscription)

    def get_deliveries_url(self, subscription) -> str:
        return self._link("webhook-deliveries", subscription)

    def get_dead_letters_url(self, subscription) -> str:
        return self._link("webhook-dead-letters", subscription)


class WebhookSubscriptionSecretSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (whsec_...): shown this once. Verify each request's "
        "webhook-signature with it (Standard Webhooks).",
    )

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "started_at", "outcome", "latency_ms", "response_code", "error"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_type = serializers.SerializerMethodField()
    event_sequence = serializers.IntegerField(source="event_id", read_only=True, allow_null=True)
    log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "message_id",
            "event_sequence",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_response_code",
            "last_error",
            "created_at",
            "delivered_at",
            "dead_at",
            "log",
        ]
        read_only_fields = fields

    def get_event_type(self, delivery) -> str:
        return delivery.event.type if delivery.event_id else "portal.webhook.test"
