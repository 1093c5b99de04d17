"""Shapes of the glossary and metrics API. Output serializers turn models into JSON; input
serializers only parse a request body, then the view hands the values to a service."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.core.links import api_url
from products.catalog.api.serializers import enum_field
from products.choices import MetricAggregation, MetricGrain, TermStatus
from products.models import GlossaryTerm, GlossaryTermVersion, Metric

TermStatusField = enum_field(TermStatus)
MetricAggregationField = enum_field(MetricAggregation)


# --- glossary ----------------------------------------------------------------------------


class TermSerializer(serializers.ModelSerializer):
    key = serializers.CharField(read_only=True)
    domain = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    domain_name = serializers.CharField(source="domain.name", read_only=True)
    status = TermStatusField(read_only=True)
    synonyms = serializers.ListField(child=serializers.CharField(), read_only=True)
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = GlossaryTerm
        fields = [
            "key",
            "name",
            "slug",
            "domain",
            "domain_name",
            "status",
            "version",
            "synonyms",
            "definition",
            "url",
            "page_url",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_url(self, term: GlossaryTerm) -> str:
        return api_url(self.context.get("request"), "definitions-api:term-detail", key=term.key)

    def get_page_url(self, term: GlossaryTerm) -> str:
        request = self.context.get("request")
        path = term.get_absolute_url()
        return request.build_absolute_uri(path) if request else path


class TermColumnUseSerializer(serializers.Serializer):
    product = serializers.CharField(source="port.product.key")
    port = serializers.CharField(source="port.slug")
    column = serializers.CharField(source="name")


class TermDetailSerializer(TermSerializer):
    # Null until the term is approved (and again if that user is deleted).
    approved_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    products = serializers.SerializerMethodField()
    columns = serializers.SerializerMethodField()

    class Meta(TermSerializer.Meta):
        fields = [*TermSerializer.Meta.fields, "approved_by", "approved_at", "products", "columns"]
        read_only_fields = fields

    def get_products(self, term) -> list[str]:
        return [product.key for product in term.usage.products]

    @extend_schema_field(TermColumnUseSerializer(many=True))
    def get_columns(self, term):
        return TermColumnUseSerializer(term.usage.columns, many=True).data


class TermVersionSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="number")
    status = TermStatusField()
    changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = GlossaryTermVersion
        fields = [
            "version",
            "name",
            "definition",
            "synonyms",
            "status",
            "changes",
            "change_note",
            "changed_by",
            "changed_at",
        ]
        read_only_fields = fields


class TermCreateSerializer(serializers.Serializer):
    domain = serializers.SlugField(help_text="The owning domain's slug.")
    name = serializers.CharField(max_length=200)
    definition = serializers.CharField(help_text="Markdown.")
    synonyms = serializers.ListField(
        child=serializers.CharField(max_length=100, allow_blank=True),
        required=False,
        max_length=20,
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class TermUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    definition = serializers.CharField(required=False)
    synonyms = serializers.ListField(
        child=serializers.CharField(max_length=100, allow_blank=True),
        required=False,
        max_length=20,
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class TermNoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class TermLinkSerializer(serializers.Serializer):
    product = serializers.CharField(help_text="The product's key, e.g. sales.orders.")
    port = serializers.CharField(
        required=False, help_text="With `column`: the port's slug (default: the first port)."
    )
    column = serializers.CharField(
        required=False,
        trim_whitespace=False,  # identifiers are verbatim
        help_text="Link the term to this column instead of the product.",
    )


# --- metrics -----------------------------------------------------------------------------


class MeasureSerializer(serializers.Serializer):
    aggregation = MetricAggregationField()
    column = serializers.CharField(allow_blank=True)


class MetricSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="port.product.key", read_only=True)
    port = serializers.CharField(source="port.slug", read_only=True)
    measure = serializers.SerializerMethodField()
    denominator = serializers.SerializerMethodField()
    grains = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    values_url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Metric
        fields = [
            "key",
            "name",
            "description",
            "product",
            "port",
            "measure",
            "denominator",
            "filters",
            "dimensions",
            "time_column",
            "grains",
            "url",
            "values_url",
            "page_url",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(MeasureSerializer)
    def get_measure(self, metric: Metric):
        return {"aggregation": metric.aggregation, "column": metric.column}

    @extend_schema_field(MeasureSerializer(allow_null=True))
    def get_denominator(self, metric: Metric):
        if not metric.is_ratio:
            return None
        return {
            "aggregation": metric.denominator_aggregation,
            "column": metric.denominator_column,
        }

    def get_grains(self, metric: Metric) -> list[str]:
        return list(MetricGrain.values) if metric.time_column else []

    def get_url(self, metric: Metric) -> str:
        return api_url(self.context.get("request"), "definitions-api:metric-detail", key=metric.key)

    def get_values_url(self, metric: Metric) -> str:
        return api_url(self.context.get("request"), "definitions-api:metric-values", key=metric.key)

    def get_page_url(self, metric: Metric) -> str:
        request = self.context.get("request")
        path = metric.get_absolute_url()
        return request.build_absolute_uri(path) if request else path


class MetricCreateSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=160, help_text="`<domain>.<name>`, e.g. sales.revenue")
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    product = serializers.CharField(help_text="The product's key, e.g. sales.orders.")
    port = serializers.CharField(required=False, help_text="The port's slug (default: the first).")
    aggregation = MetricAggregationField()
    # Identifiers are verbatim: a column named "amount " is not "amount".
    column = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False
    )
    denominator_aggregation = MetricAggregationField(required=False, allow_blank=True)
    denominator_column = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False
    )
    filters = serializers.JSONField(
        required=False, help_text='A list of {"column", "op", "value"} that must all hold.'
    )
    dimensions = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False), required=False
    )
    time_column = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False
    )


class MetricValuesSerializer(serializers.Serializer):
    """The values of a metric: `rows` of {period?, <dimension>..., value}."""

    metric = serializers.CharField()
    name = serializers.CharField()
    grain = serializers.CharField(allow_null=True)
    dimensions = serializers.ListField(child=serializers.CharField())
    start = serializers.DateField(allow_null=True)
    end = serializers.DateField(allow_null=True)
    filters = serializers.ListField(child=serializers.DictField())
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.DictField())
    truncated = serializers.BooleanField()
