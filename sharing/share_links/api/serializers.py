"""Shapes of the share-link API. The input serializer only parses a body; the service
(share_link_create) holds the rules and answers bad input per field."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from products.catalog.api.serializers import InputSerializer
from sharing.access.api.serializers import COLUMNS_HELP, FILTER_HELP
from sharing.choices import FILE_FORMATS
from sharing.models import ShareLink
from sharing.share_links.services import DEFAULT_DAYS, MAX_DAYS, NOTE_MAX_CHARS, share_link_status

STATUSES = ["active", "expired", "revoked", "used_up"]


class ShareLinkSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.key", read_only=True)
    port = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False), read_only=True
    )
    row_filter = serializers.JSONField(read_only=True, help_text=FILTER_HELP)
    status = serializers.SerializerMethodField()
    revoked_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = ShareLink
        fields = [
            "id",
            "token_hint",
            "product",
            "port",
            "export_run",
            "columns",
            "row_filter",
            "format",
            "neutralise_formulas",
            "note",
            "expires_at",
            "max_downloads",
            "download_count",
            "last_used_at",
            "created_at",
            "status",
            "revoked_at",
            "revoked_by",
            "revoke_reason",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "enum": STATUSES})
    def get_status(self, link: ShareLink) -> str:
        return share_link_status(link)


class ShareLinkCreatedSerializer(ShareLinkSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The link's secret: shown in this answer only, never again."
    )
    url = serializers.CharField(read_only=True, help_text="The link to send: /s/<token>/.")

    class Meta(ShareLinkSerializer.Meta):
        fields = [*ShareLinkSerializer.Meta.fields, "token", "url"]
        read_only_fields = fields


class ShareLinkCreateSerializer(InputSerializer):
    product = serializers.CharField(help_text="The product's key, such as sales.orders.")
    port = serializers.CharField(
        required=False, allow_blank=True, help_text="An output port's slug (default: the first)."
    )
    columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False),
        required=False,
        help_text=COLUMNS_HELP.replace("every column", "every column you may share"),
    )
    row_filter = serializers.JSONField(
        required=False, help_text=FILTER_HELP + " Your own row filter applies as well."
    )
    format = serializers.CharField(
        required=False, help_text=f"One of {', '.join(FILE_FORMATS)} (default csv)."
    )
    neutralise_formulas = serializers.BooleanField(
        required=False,
        help_text="CSV only: put a ' in front of text cells starting with = + - @, a tab or a "
        "carriage return, so a spreadsheet opening the file shows them instead of running "
        "them as formulas (off: values are written as they are).",
    )
    expires_at = serializers.DateTimeField(
        required=False, help_text=f"At most {MAX_DAYS} days from now. Or…"
    )
    expires_in_days = serializers.IntegerField(
        required=False, help_text=f"…days from now: 1 to {MAX_DAYS}, default {DEFAULT_DAYS}."
    )
    max_downloads = serializers.IntegerField(
        required=False, allow_null=True, help_text="Optional: at least 1."
    )
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text=f"Shown to the recipient, plain text, at most {NOTE_MAX_CHARS} characters.",
    )
    export_run = serializers.IntegerField(
        required=False,
        help_text="Share this export run's file instead of live rows (no columns, filter "
        "or port then).",
    )


class RevokeSerializer(InputSerializer):
    reason = serializers.CharField(required=False, allow_blank=True)
