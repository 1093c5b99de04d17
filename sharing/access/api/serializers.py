"""Shapes of the access API. Output serializers turn rows into JSON; input serializers
only parse a body, and the view hands the values to a service, which holds the rules."""

from rest_framework import serializers

from products.catalog.api.serializers import InputSerializer, enum_field
from sharing.access.audit_words import event_in_words
from sharing.choices import AuditAction, RequestStatus
from sharing.models import AccessEvent, AccessGrant, AccessRequest

RequestStatusField = enum_field(RequestStatus)
AuditActionField = enum_field(AuditAction)

COLUMNS_HELP = "Column names; empty means every column."
FILTER_HELP = (
    'Row filter: a list of {"column", "op", "value"} clauses that must all hold, '
    "op among = != < <= > >= in, not in, is null, is not null."
)


class _Username(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(slug_field="username", read_only=True, **kwargs)


class AccessRequestSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.key", read_only=True)
    requester = _Username()
    decided_by = _Username(allow_null=True)
    status = RequestStatusField(read_only=True)
    columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False), help_text=COLUMNS_HELP
    )

    class Meta:
        model = AccessRequest
        fields = [
            "id",
            "product",
            "requester",
            "purpose",
            "columns",
            "duration_days",
            "status",
            "decided_by",
            "decided_at",
            "decision_reason",
            "created_at",
        ]
        read_only_fields = fields


class AccessRequestCreateSerializer(InputSerializer):
    purpose = serializers.CharField(allow_blank=True)
    columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False), required=False, help_text=COLUMNS_HELP
    )
    duration_days = serializers.IntegerField(
        required=False, help_text="Default and maximum: the product's access_max_days."
    )


class AccessRequestApproveSerializer(InputSerializer):
    columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False),
        required=False,
        help_text="Narrow the request to these columns (a subset of what was asked).",
    )
    row_filter = serializers.JSONField(required=False, help_text=FILTER_HELP)
    duration_days = serializers.IntegerField(
        required=False, help_text="Shorten the access (at most what was asked)."
    )
    reason = serializers.CharField(required=False, allow_blank=True)


class ReasonSerializer(InputSerializer):
    reason = serializers.CharField(allow_blank=True)


class GrantSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.key", read_only=True)
    user = _Username(allow_null=True)
    group = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    granted_by = _Username(allow_null=True)
    revoked_by = _Username(allow_null=True)
    columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False), help_text=COLUMNS_HELP
    )
    row_filter = serializers.JSONField(help_text=FILTER_HELP)

    class Meta:
        model = AccessGrant
        fields = [
            "id",
            "product",
            "user",
            "group",
            "columns",
            "row_filter",
            "expires_at",
            "reason",
            "granted_by",
            "request",
            "shareable",
            "created_at",
            "last_used_at",
            "revoked_at",
            "revoked_by",
            "revoke_reason",
        ]
        read_only_fields = fields


class GrantCreateSerializer(InputSerializer):
    username = serializers.CharField(required=False, help_text="The grantee, or…")
    group = serializers.CharField(required=False, help_text="…a group (a team) by name.")
    columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False), required=False, help_text=COLUMNS_HELP
    )
    row_filter = serializers.JSONField(required=False, help_text=FILTER_HELP)
    duration_days = serializers.IntegerField(required=False)
    reason = serializers.CharField(allow_blank=True)
    shareable = serializers.BooleanField(required=False, default=False)


class RevokeForUserSerializer(InputSerializer):
    username = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)


class RevokeForUserResultSerializer(serializers.Serializer):
    username = serializers.CharField()
    revoked = serializers.IntegerField(help_text="How many grants were revoked.")


class MyAccessSerializer(serializers.Serializer):
    grants = GrantSerializer(many=True, help_text="Active grants (yours and your teams').")
    requests = AccessRequestSerializer(many=True)


class AccessEventSerializer(serializers.ModelSerializer):
    user = _Username(allow_null=True)
    product = serializers.CharField(source="product_key", read_only=True)
    action = AuditActionField(read_only=True)
    channel = serializers.CharField(read_only=True, help_text="A channel for reads, else empty.")
    columns = serializers.ListField(child=serializers.CharField(trim_whitespace=False))
    row_filter = serializers.JSONField()
    detail = serializers.JSONField()
    summary = serializers.SerializerMethodField(help_text="What happened, in words.")

    class Meta:
        model = AccessEvent
        fields = [
            "id",
            "at",
            "action",
            "user",
            "product",
            "channel",
            "columns",
            "row_filter",
            "rows",
            "bytes",
            "client_address",
            "grant",
            "request",
            "detail",
            "summary",
        ]
        read_only_fields = fields

    def get_summary(self, event: AccessEvent) -> str:
        return event_in_words(event)
