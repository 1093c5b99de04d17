"""Shapes of the embed API. Input serializers parse a body; the services
(sharing.embeds.services) hold the rules and answer bad input per field."""

from rest_framework import serializers
from rest_framework.reverse import reverse

from products.catalog.api.serializers import InputSerializer
from sharing.choices import EmbedChart, EmbedKeyAlgorithm
from sharing.models import Embed, EmbedApp, EmbedKey

PARAMS_HELP = (
    'Locked parameters: {"tenant": "customer_id"} filters the rows on customer_id = the '
    "value of `tenant` in each token's `params` claim."
)


class EmbedSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.key", read_only=True)
    port = serializers.CharField(source="port.slug", read_only=True)
    metric = serializers.CharField(source="metric.key", read_only=True, allow_null=True)
    columns = serializers.ListField(child=serializers.CharField(), read_only=True)
    locked_params = serializers.DictField(
        child=serializers.CharField(), read_only=True, help_text=PARAMS_HELP
    )
    allowed_origins = serializers.ListField(child=serializers.CharField(), read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    page_url = serializers.SerializerMethodField(
        help_text="Load it in an iframe with the token in the fragment: <page_url>#token=..."
    )
    data_url = serializers.SerializerMethodField(
        help_text="The data calls: GET with Authorization: Bearer <token>."
    )

    class Meta:
        model = Embed
        fields = [
            "id",
            "product",
            "port",
            "metric",
            "title",
            "chart",
            "columns",
            "grain",
            "dimension",
            "locked_params",
            "allowed_origins",
            "cache_seconds",
            "row_cap",
            "allow_csv",
            "show_last_good",
            "active",
            "created_by",
            "created_at",
            "disabled_at",
            "page_url",
            "data_url",
        ]
        read_only_fields = fields

    def get_page_url(self, embed: Embed) -> str:
        return reverse("sharing:embed", args=[embed.pk], request=self.context.get("request"))

    def get_data_url(self, embed: Embed) -> str:
        return reverse("sharing:embed-data", args=[embed.pk], request=self.context.get("request"))


class EmbedCreateSerializer(InputSerializer):
    product = serializers.CharField(help_text="The product's key, e.g. sales.orders.")
    title = serializers.CharField(trim_whitespace=True)
    chart = serializers.ChoiceField(choices=EmbedChart.choices)
    metric = serializers.CharField(
        required=False, allow_blank=True, help_text="A metric of the product (its key)."
    )
    port = serializers.CharField(
        required=False, allow_blank=True, help_text="Without a metric: the port (its slug)."
    )
    columns = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False),
        required=False,
        help_text="Without a metric: a table's columns, or a chart's x then its y columns.",
    )
    grain = serializers.CharField(required=False, allow_blank=True)
    dimension = serializers.CharField(required=False, allow_blank=True)
    locked_params = serializers.DictField(
        child=serializers.CharField(), required=False, help_text=PARAMS_HELP
    )
    allowed_origins = serializers.ListField(
        child=serializers.CharField(),
        help_text="Origins that may frame the embed, e.g. https://app.example.com.",
    )
    cache_seconds = serializers.IntegerField(required=False)
    row_cap = serializers.IntegerField(required=False)
    allow_csv = serializers.BooleanField(required=False, default=False)
    show_last_good = serializers.BooleanField(required=False, default=False)


class DenyTokenSerializer(InputSerializer):
    jti = serializers.CharField(help_text="The token's id (its jti claim).")


class EmbedKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = EmbedKey
        fields = ["kid", "algorithm", "public_key", "created_at"]
        read_only_fields = fields


class EmbedAppSerializer(serializers.ModelSerializer):
    embed = serializers.UUIDField(source="embed_id", read_only=True, allow_null=True)
    domain = serializers.CharField(source="domain.slug", read_only=True, allow_null=True)
    keys = EmbedKeySerializer(many=True, read_only=True)

    class Meta:
        model = EmbedApp
        fields = ["id", "name", "description", "embed", "domain", "keys", "created_at"]
        read_only_fields = fields


class EmbedKeyCreateSerializer(InputSerializer):
    kid = serializers.CharField(help_text="The key id your tokens' header names.")
    algorithm = serializers.ChoiceField(choices=EmbedKeyAlgorithm.choices)
    public_key = serializers.CharField(help_text="PEM (-----BEGIN PUBLIC KEY-----...)")


class EmbedAppCreateSerializer(EmbedKeyCreateSerializer):
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_blank=True)
    embed = serializers.UUIDField(required=False, help_text="For one embed (its id)...")
    domain = serializers.CharField(required=False, help_text="...or every embed of a domain.")
