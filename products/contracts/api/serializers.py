"""Shapes of the contract API: versions, the problems of a refused import, the changes
between two versions."""

from rest_framework import serializers

from portal.core.links import api_url
from products.catalog.api.serializers import InputSerializer, enum_field
from products.choices import ContractChangeKind, ContractStatus
from products.models import Contract

ContractStatusField = enum_field(ContractStatus)
ContractChangeKindField = enum_field(ContractChangeKind)


class ContractProblemSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="JSON path in the document, e.g. `$.schema[0].name`.")
    message = serializers.CharField()


class ContractInvalidSerializer(serializers.Serializer):
    detail = serializers.CharField()
    problems = ContractProblemSerializer(many=True, required=False)  # absent: refused unread


class ContractChangeSerializer(serializers.Serializer):
    kind = ContractChangeKindField()
    label = serializers.CharField()
    breaking = serializers.BooleanField()
    subject = serializers.CharField(help_text="What changed: `port.column`, `port / check`...")
    message = serializers.CharField()
    path = serializers.CharField(help_text="Where, in the newer document.")


class ContractSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    odcs_url = serializers.SerializerMethodField()
    status = ContractStatusField(read_only=True)
    contract_id = serializers.CharField(read_only=True, help_text="The ODCS `id`.")
    current = serializers.SerializerMethodField(help_text="The product's current contract.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    published_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Contract
        fields = [
            "version",
            "url",
            "odcs_url",
            "status",
            "current",
            "contract_id",
            "created_by",
            "created_at",
            "published_by",
            "published_at",
        ]
        read_only_fields = fields

    def _key(self, contract: Contract) -> str:
        return self.context["product"].key

    def get_url(self, contract: Contract) -> str:
        return api_url(
            self.context.get("request"),
            "products-api:product-contract-detail",
            product_key=self._key(contract),
            version=contract.version,
        )

    def get_odcs_url(self, contract: Contract) -> str:
        return api_url(
            self.context.get("request"),
            "products-api:product-contract-odcs",
            product_key=self._key(contract),
            version=contract.version,
        )

    def get_current(self, contract: Contract) -> bool:
        current = self.context.get("current")
        return current is not None and current.pk == contract.pk


class ContractDetailSerializer(ContractSerializer):
    document = serializers.JSONField(read_only=True, help_text="The ODCS document.")
    unmapped = ContractProblemSerializer(
        many=True, read_only=True, help_text="What the portal keeps in the contract only."
    )
    breaking_changes = ContractChangeSerializer(
        many=True, read_only=True, help_text="Against the version it replaced, when published."
    )

    class Meta(ContractSerializer.Meta):
        fields = [*ContractSerializer.Meta.fields, "unmapped", "breaking_changes", "document"]
        read_only_fields = fields


class ContractUploadSerializer(serializers.Serializer):
    """A multipart upload: the YAML file, and where new output ports read from."""

    file = serializers.FileField(help_text="The ODCS YAML file.")
    source = serializers.CharField(
        required=False,
        help_text="Name of the registered data source for output ports the product lacks.",
    )


class ContractPublishSerializer(InputSerializer):
    confirm_breaking = serializers.BooleanField(
        default=False,
        help_text="Publish although the version breaks the current one (409 otherwise).",
    )


class ContractBreakingSerializer(serializers.Serializer):
    detail = serializers.CharField()
    version = serializers.CharField()
    current = serializers.CharField()
    breaking_changes = ContractChangeSerializer(many=True)


class ContractDiffSerializer(serializers.Serializer):
    from_version = serializers.CharField()
    to_version = serializers.CharField()
    breaking = serializers.BooleanField(help_text="Whether any change is breaking.")
    changes = ContractChangeSerializer(many=True)


class ProductFromContractSerializer(serializers.Serializer):
    product = serializers.CharField(help_text="The new product's key.")
    product_url = serializers.CharField()
    contract = ContractDetailSerializer()
