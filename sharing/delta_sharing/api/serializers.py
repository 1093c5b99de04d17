"""Shapes of the Delta Sharing management API (`/api/v1/delta-shares/`). Output
serializers turn rows into JSON; input serializers only parse a body for a service."""

from django.utils import timezone
from rest_framework import serializers

from products.catalog.api.serializers import InputSerializer
from sharing.access.api.serializers import COLUMNS_HELP, FILTER_HELP
from sharing.delta_sharing.services import NAME_RULE, RECIPIENT_DEFAULT_DAYS, RECIPIENT_MAX_DAYS
from sharing.models import DeltaRecipient, DeltaShare, DeltaShareTable


class DeltaShareTableSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.key", read_only=True)
    port = serializers.SerializerMethodField()
    address = serializers.SerializerMethodField(help_text="share.schema.table, for clients.")

    class Meta:
        model = DeltaShareTable
        fields = [
            "id",
            "address",
            "schema",
            "name",
            "product",
            "port",
            "columns",
            "row_filter",
            "version",
            "version_changed_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_port(self, table) -> str | None:
        return table.port.slug if table.port_id else None

    def get_address(self, table) -> str:
        return f"{table.share.name}.{table.schema}.{table.name}"


class DeltaRecipientSerializer(serializers.ModelSerializer):
    # Both are null: revoked_by until a revocation, created_by once that user is deleted.
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    revoked_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    active = serializers.SerializerMethodField()

    class Meta:
        model = DeltaRecipient
        fields = [
            "id",
            "name",
            "token_hint",
            "expires_at",
            "active",
            "last_used_at",
            "created_by",
            "created_at",
            "revoked_at",
            "revoked_by",
        ]
        read_only_fields = fields

    def get_active(self, recipient) -> bool:
        return recipient.revoked_at is None and recipient.expires_at > timezone.now()


class DeltaShareSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    table_count = serializers.IntegerField(read_only=True)
    active_recipient_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = DeltaShare
        fields = [
            "name",
            "description",
            "created_by",
            "created_at",
            "table_count",
            "active_recipient_count",
        ]
        read_only_fields = fields


class DeltaShareDetailSerializer(DeltaShareSerializer):
    tables = DeltaShareTableSerializer(many=True, read_only=True)
    recipients = DeltaRecipientSerializer(many=True, read_only=True)

    class Meta(DeltaShareSerializer.Meta):
        fields = [*DeltaShareSerializer.Meta.fields, "tables", "recipients"]
        read_only_fields = fields


class DeltaShareCreateSerializer(InputSerializer):
    name = serializers.CharField(help_text=NAME_RULE)
    description = serializers.CharField(required=False, allow_blank=True)


class DeltaShareTableCreateSerializer(InputSerializer):
    product = serializers.CharField(help_text="The product's key, <domain>.<product>.")
    port = serializers.CharField(
        required=False, allow_blank=True, help_text="The port's slug (default: the first)."
    )
    schema = serializers.CharField(
        required=False, allow_blank=True, help_text="Default: `default`. " + NAME_RULE
    )
    name = serializers.CharField(
        required=False, allow_blank=True, help_text="Default: the product's slug. " + NAME_RULE
    )
    columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False), required=False, help_text=COLUMNS_HELP
    )
    row_filter = serializers.JSONField(required=False, help_text=FILTER_HELP)


class DeltaRecipientCreateSerializer(InputSerializer):
    name = serializers.CharField(help_text="Who reads: a person or an organisation.")
    expires_at = serializers.DateTimeField(
        required=False,
        help_text=f"Default: in {RECIPIENT_DEFAULT_DAYS} days; at most {RECIPIENT_MAX_DAYS} "
        "days from now.",
    )


class DeltaProfileSerializer(serializers.Serializer):
    shareCredentialsVersion = serializers.IntegerField()  # noqa: N815 - the file's own keys
    endpoint = serializers.CharField()
    bearerToken = serializers.CharField()  # noqa: N815
    expirationTime = serializers.CharField()  # noqa: N815


class DeltaRecipientCreatedSerializer(serializers.Serializer):
    recipient = DeltaRecipientSerializer()
    profile = DeltaProfileSerializer(
        help_text="The profile file (save it as `<name>.share`). Its bearer token is shown "
        "this once and never stored: keep the file safe."
    )
