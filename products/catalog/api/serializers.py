"""Shapes of the catalog API. Output serializers turn models into JSON; input serializers
only parse and type-check a request body, then the view hands the values to a service,
which holds the rules. No serializer saves anything itself.

Secrets never leave through here: a data source shows its name, kind and description, and
a port shows its source's name and a location string, never host credentials or the
name of the password's environment variable.
"""

from django.contrib.auth import get_user_model
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.core.links import api_url
from products.catalog.permissions import can_edit_product
from products.choices import (
    Audience,
    Classification,
    FileFormat,
    LifecycleStatus,
    PortKind,
    RunStatus,
    SourceKind,
)
from products.models import (
    Column,
    DataProduct,
    DataSource,
    Domain,
    DomainMembership,
    OutputPort,
    SchemaRefreshRun,
)

# --- helpers ---------------------------------------------------------------------------


def enum_field(choices_class: type[models.TextChoices]) -> type[serializers.ChoiceField]:
    """A ChoiceField over a TextChoices class, documented as one named OpenAPI enum
    component (`PortKindEnum`, `LifecycleStatusEnum`...). Two choice sets share the field
    names `kind` and `status`; naming them by their class keeps the schema unambiguous."""
    schema = {
        "type": "string",
        "enum": list(choices_class.values),
        "description": "\n".join(f"* `{v}` - {label}" for v, label in choices_class.choices),
    }

    @extend_schema_field(schema, component_name=f"{choices_class.__name__}Enum")
    class EnumField(serializers.ChoiceField):
        def __init__(self, **kwargs):
            super().__init__(choices=choices_class.choices, **kwargs)

    EnumField.__name__ = EnumField.__qualname__ = f"{choices_class.__name__}Field"
    return EnumField


LifecycleStatusField = enum_field(LifecycleStatus)
PortKindField = enum_field(PortKind)
RunStatusField = enum_field(RunStatus)
SourceKindField = enum_field(SourceKind)


class InputSerializer(serializers.Serializer):
    """Base of request bodies: a field the endpoint does not take is an error, not
    silently ignored (the services refuse unknown fields the same way)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["This field cannot be set here."] for name in unknown}
                )
        return super().to_internal_value(data)


# --- domains ---------------------------------------------------------------------------


class DomainRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Domain
        fields = ["slug", "name"]


class DomainSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    product_count = serializers.IntegerField(
        read_only=True, help_text="Published and deprecated products of the domain."
    )

    class Meta:
        model = Domain
        fields = ["slug", "name", "description", "product_count", "url", "created_at"]

    def get_url(self, domain: Domain) -> str:
        return api_url(self.context.get("request"), "products-api:domain-detail", slug=domain.slug)


class DomainMemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = DomainMembership
        fields = ["username", "role"]


class DomainDetailSerializer(DomainSerializer):
    team = DomainMemberSerializer(many=True, read_only=True, source="team_members")
    member_count = serializers.SerializerMethodField()
    products_url = serializers.SerializerMethodField()

    class Meta(DomainSerializer.Meta):
        fields = [*DomainSerializer.Meta.fields, "member_count", "team", "products_url"]

    def get_member_count(self, domain: Domain) -> int:
        return len(domain.team_members)

    def get_products_url(self, domain: Domain) -> str:
        url = api_url(self.context.get("request"), "products-api:product-list")
        return f"{url}?domain={domain.slug}"


# --- products --------------------------------------------------------------------------


class ProductSerializer(serializers.ModelSerializer):
    key = serializers.CharField(read_only=True, help_text="`<domain-slug>.<product-slug>`")
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField(help_text="The product's page in the portal.")
    ports_url = serializers.SerializerMethodField()
    domain = DomainRefSerializer(read_only=True)
    status = LifecycleStatusField(read_only=True)
    tags = serializers.SerializerMethodField()
    owners = serializers.SerializerMethodField()

    class Meta:
        model = DataProduct
        fields = [
            "key",
            "url",
            "page_url",
            "name",
            "slug",
            "domain",
            "summary",
            "description",
            "purpose_use_case",
            "purpose_intended_users",
            "purpose_expected_outcome",
            "audience",
            "status",
            "version",
            "check_schedule",
            "feedback_response_days",
            "tags",
            "owners",
            "ports_url",
            "created_at",
            "updated_at",
            "published_at",
            "deprecated_at",
            "retired_at",
        ]
        read_only_fields = fields

    def get_url(self, product: DataProduct) -> str:
        return api_url(self.context.get("request"), "products-api:product-detail", key=product.key)

    def get_page_url(self, product: DataProduct) -> str:
        request = self.context.get("request")
        path = product.get_absolute_url()
        return request.build_absolute_uri(path) if request is not None else path

    def get_ports_url(self, product: DataProduct) -> str:
        return api_url(
            self.context.get("request"), "products-api:product-port-list", product_key=product.key
        )

    # Read from the prefetched rows (product_search and product_get_visible prefetch
    # them), so a page of products costs the same number of queries as one product.
    def get_tags(self, product: DataProduct) -> list[str]:
        return [tag.name for tag in product.tags.all()]

    def get_owners(self, product: DataProduct) -> list[str]:
        return [user.username for user in product.owners.all()]


class ProductCreateSerializer(InputSerializer):
    domain = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Domain.objects.all(),
        help_text="Slug of the domain the product belongs to.",
        error_messages={"does_not_exist": "There is no domain with the slug {value}."},
    )
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(
        max_length=80, required=False, help_text="Derived from the name when left out."
    )
    summary = serializers.CharField(max_length=300, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, help_text="Markdown")
    purpose_use_case = serializers.CharField(required=False, allow_blank=True)
    purpose_intended_users = serializers.CharField(required=False, allow_blank=True)
    purpose_expected_outcome = serializers.CharField(required=False, allow_blank=True)
    audience = serializers.ChoiceField(choices=Audience.choices, required=False)
    version = serializers.CharField(max_length=40, required=False)
    check_schedule = serializers.CharField(
        max_length=120, required=False, help_text="Cron (5 fields, UTC) of the checks."
    )
    feedback_response_days = serializers.IntegerField(
        min_value=1,
        max_value=30,
        required=False,
        help_text="The feedback response objective, in business days (Monday to Friday).",
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=60), required=False, max_length=50
    )
    owners = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        many=True,
        required=False,
        help_text="Usernames; the author when left out.",
        error_messages={"does_not_exist": "There is no user named {value}."},
    )


class ProductUpdateSerializer(InputSerializer):
    """PUT replaces every editable field (all required); PATCH changes the ones given.
    The domain and slug (the product's key) do not change."""

    name = serializers.CharField(max_length=200)
    summary = serializers.CharField(max_length=300, allow_blank=True)
    description = serializers.CharField(allow_blank=True, help_text="Markdown")
    purpose_use_case = serializers.CharField(allow_blank=True)
    purpose_intended_users = serializers.CharField(allow_blank=True)
    purpose_expected_outcome = serializers.CharField(allow_blank=True)
    audience = serializers.ChoiceField(choices=Audience.choices)
    version = serializers.CharField(max_length=40)
    check_schedule = serializers.CharField(
        max_length=120, required=False, help_text="Cron (5 fields, UTC) of the checks."
    )
    feedback_response_days = serializers.IntegerField(
        min_value=1,
        max_value=30,
        required=False,
        help_text="The feedback response objective, in business days (Monday to Friday).",
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=60), max_length=50)
    owners = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        many=True,
        error_messages={"does_not_exist": "There is no user named {value}."},
    )


# --- ports and columns -----------------------------------------------------------------


class ColumnSerializer(serializers.ModelSerializer):
    class Meta:
        model = Column
        fields = [
            "name",
            "data_type",
            "description",
            "nullable",
            "classification",
            "position",
            "primary_key",
        ]
        read_only_fields = fields


class ColumnUpdateSerializer(InputSerializer):
    """People document columns; the name, type and nullability come from the source."""

    description = serializers.CharField(required=False, allow_blank=True)
    classification = serializers.ChoiceField(choices=Classification.choices, required=False)


class RunRefSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    status = RunStatusField(read_only=True)

    class Meta:
        model = SchemaRefreshRun
        fields = ["id", "status", "url", "created_at", "finished_at"]
        read_only_fields = fields

    def get_url(self, run: SchemaRefreshRun) -> str:
        return api_url(
            self.context.get("request"), "products-api:schema-refresh-run-detail", pk=run.pk
        )


class OutputPortSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    columns_url = serializers.SerializerMethodField()
    kind = PortKindField(read_only=True)
    source = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    location = serializers.CharField(
        read_only=True, help_text="Where the data lives, for people; never a secret."
    )
    columns = ColumnSerializer(many=True, read_only=True)
    last_refresh = serializers.SerializerMethodField()
    # Blank for table ports: say so in the schema (a read-only field would lose it).
    file_format = serializers.ChoiceField(
        choices=FileFormat.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = OutputPort
        fields = [
            "slug",
            "url",
            "name",
            "description",
            "kind",
            "source",
            "location",
            "schema_name",
            "table_name",
            "file_path",
            "file_format",
            "stream_name",
            "stream_subject",
            "freshness_column",
            "schema_refreshed_at",
            "last_refresh",
            "columns_url",
            "columns",
            "created_at",
        ]
        read_only_fields = fields

    def get_url(self, port: OutputPort) -> str:
        return api_url(
            self.context.get("request"),
            "products-api:product-port-detail",
            product_key=port.product.key,
            slug=port.slug,
        )

    def get_columns_url(self, port: OutputPort) -> str:
        return api_url(
            self.context.get("request"),
            "products-api:port-column-list",
            product_key=port.product.key,
            port_slug=port.slug,
        )

    @extend_schema_field(RunRefSerializer(allow_null=True))
    def get_last_refresh(self, port: OutputPort) -> dict | None:
        run = self.context.get("latest_runs", {}).get(port.pk)
        return RunRefSerializer(run, context=self.context).data if run else None


class _PortFieldsSerializer(InputSerializer):
    description = serializers.CharField(required=False, allow_blank=True)
    kind = PortKindField(required=False)
    source = serializers.SlugRelatedField(
        slug_field="name",
        queryset=DataSource.objects.all(),
        required=False,
        allow_null=True,
        help_text="Name of a registered data source (table ports).",
        error_messages={"does_not_exist": "There is no data source named {value}."},
    )
    schema_name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    table_name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    file_path = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="Path relative to the portal's media storage (file ports).",
    )
    file_format = serializers.ChoiceField(
        choices=FileFormat.choices, required=False, allow_blank=True
    )
    stream_name = serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        help_text="The NATS JetStream stream (stream ports); it starts with the domain's "
        "prefix, SALES_ for the sales domain.",
    )
    stream_subject = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text="The subject within the stream the port serves (stream ports).",
    )
    freshness_column = serializers.CharField(max_length=255, required=False, allow_blank=True)


class OutputPortCreateSerializer(_PortFieldsSerializer):
    name = serializers.CharField(max_length=120)


class OutputPortUpdateSerializer(_PortFieldsSerializer):
    name = serializers.CharField(max_length=120, required=False)


# --- schema refresh runs ---------------------------------------------------------------


class SchemaRefreshRunSerializer(serializers.ModelSerializer):
    """A schema refresh run; `error` is the reason for editors, a summary for others."""

    url = serializers.SerializerMethodField()
    status = RunStatusField(read_only=True)
    product = serializers.CharField(source="port.product.key", read_only=True)
    port = serializers.CharField(source="port.slug", read_only=True)
    port_url = serializers.SerializerMethodField()
    is_finished = serializers.BooleanField(read_only=True)
    error = serializers.SerializerMethodField()

    class Meta:
        model = SchemaRefreshRun
        fields = [
            "id",
            "url",
            "status",
            "is_finished",
            "product",
            "port",
            "port_url",
            "error",
            "columns_added",
            "columns_removed",
            "columns_changed",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_error(self, run: SchemaRefreshRun) -> str:
        request = self.context.get("request")
        return run_error_for(user=getattr(request, "user", None), run=run)

    def get_url(self, run: SchemaRefreshRun) -> str:
        return api_url(
            self.context.get("request"), "products-api:schema-refresh-run-detail", pk=run.pk
        )

    def get_port_url(self, run: SchemaRefreshRun) -> str:
        return api_url(
            self.context.get("request"),
            "products-api:product-port-detail",
            product_key=run.port.product.key,
            slug=run.port.slug,
        )


# --- data sources ----------------------------------------------------------------------


class DataSourceSerializer(serializers.ModelSerializer):
    """What any signed-in user may know about a source: no host, user, cluster or secret
    name."""

    kind = SourceKindField(read_only=True)

    class Meta:
        model = DataSource
        fields = ["name", "kind", "description", "created_at"]
        read_only_fields = fields


class DataSourceCreateSerializer(InputSerializer):
    name = serializers.CharField(max_length=120)
    kind = SourceKindField()
    description = serializers.CharField(required=False, allow_blank=True)
    host = serializers.CharField(max_length=255, required=False, allow_blank=True)
    port = serializers.IntegerField(
        min_value=1,
        max_value=65535,
        required=False,
        allow_null=True,
        help_text="A Spark source's Spark Connect port: 15002 when not given.",
    )
    database = serializers.CharField(max_length=120, required=False, allow_blank=True)
    username = serializers.CharField(max_length=120, required=False, allow_blank=True)
    password_env = serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="Name of the environment variable holding the password (a Spark source: "
        "its token); never the password.",
    )
    cluster_id = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="Databricks: the cluster to run on (sent as x-databricks-cluster-id); "
        "blank elsewhere.",
    )
    path = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="Path of the DuckDB database file.",
    )


def run_error_for(*, user, run: SchemaRefreshRun) -> str:
    """A failed run's reason names hosts and variables: only the product's editors read
    it; everyone else learns that it failed."""
    if not run.error or can_edit_product(user=user, product=run.port.product):
        return run.error
    return "The refresh failed. The product's owners and stewards can see why."


def search_matches(matches) -> list[dict]:
    """A search result's reasons (products.catalog.search.FieldMatch) for the API: the
    field, the column or tag, how the word matched (`full`, `partial` or `close`, a typo
    corrected to `corrected_to`)."""
    return [
        {
            "word": match.word,
            "field": match.field,
            "detail": match.detail,
            "quality": match.quality.name.lower(),
            "corrected_to": match.corrected_to,
        }
        for match in matches
    ]
