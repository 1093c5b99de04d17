"""Contract API under `/api/v1/`: import (an `application/yaml` body or a multipart file),
versions, the ODCS YAML of a version or of the catalog, the ODPS descriptor, the diff of
two versions, publishing, and a new product from a contract.

Thin like the rest of the API: the product comes through the visibility rule
(ProductScopedMixin: an invisible product is a 404); who may write is asked before the
body is read (ContractEditorWritesOnly); the services in products.contracts.services.contracts do
the work. A refused import answers 400 with every problem and its path:
`{"detail": ..., "problems": [{"path": "$.schema[0].name", "message": ...}]}`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings

from portal.api.parsers import LegacyYAMLParser, PayloadTooLarge, YAMLParser, body_too_large
from portal.api.schema import FieldErrorsSerializer
from portal.core.links import api_url
from products.catalog.api.views import PRODUCT_KEY_PARENT, ProductScopedMixin
from products.catalog.permissions import can_edit_product
from products.contracts.api.serializers import (
    ContractBreakingSerializer,
    ContractDetailSerializer,
    ContractDiffSerializer,
    ContractInvalidSerializer,
    ContractPublishSerializer,
    ContractSerializer,
    ContractUploadSerializer,
    ProductFromContractSerializer,
)
from products.contracts.services.contracts import (
    BreakingChangesUnconfirmed,
    ContractInvalid,
    ContractTooLarge,
    contract_current,
    contract_delete,
    contract_diff,
    contract_export,
    contract_import,
    contract_publish,
    contract_yaml,
    contracts_of_product,
    product_create_from_contract,
)
from products.contracts.services.documents import MAX_CONTRACT_BYTES, document_dump
from products.contracts.services.odps import product_odps
from products.models import Contract, DataProduct, DataSource, Domain

YAML = "application/yaml"
# A multipart body carries the file and a little framing around it.
MULTIPART_SLACK = 64 * 1024
VERSION = OpenApiParameter(
    "version",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="A semantic version, e.g. `1.2.0`.",
)
SOURCE = OpenApiParameter(
    "source",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    description="Name of the registered data source where output ports the product lacks "
    "are created (when the contract's servers match none).",
)
ALLOW_MISSING_RELATIONS = OpenApiParameter(
    "allow_missing_relations",
    OpenApiTypes.BOOL,
    OpenApiParameter.QUERY,
    description="Add output ports even for relations their data source does not have; each "
    "is kept with a warning in the version's `unmapped` notes. Without it a contract naming a "
    "missing relation is refused (400, naming it).",
)
IMPORT_BODY = {
    YAML: OpenApiTypes.STR,
    "application/x-yaml": OpenApiTypes.STR,
    "multipart/form-data": ContractUploadSerializer,
}


def yaml_document(standard: str, kind: str) -> OpenApiResponse:
    """A YAML document answer: a mapping (what a YAML-aware client parses it into), with
    the standard's `apiVersion` and `kind`, as an attachment."""
    return OpenApiResponse(
        {
            "type": "object",
            "description": f"A {standard} document (YAML).",
            "required": ["apiVersion", "kind"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string", "enum": [kind]},
            },
            "additionalProperties": True,
        },
        description=f"The {standard} document in YAML, as an attachment.",
    )


ODCS_DOCUMENT = yaml_document("ODCS v3.1 data contract", "DataContract")
ODPS_DOCUMENT = yaml_document("ODPS v1.0.0 data product", "DataProduct")
INVALID = OpenApiResponse(
    PolymorphicProxySerializer(
        component_name="ContractRefused",
        serializers=[ContractInvalidSerializer, FieldErrorsSerializer],
        resource_type_field_name=None,
    ),
    description="Either the contract's problems, every one with its path (`detail`, "
    "`problems`), or what is wrong with the request itself: a list of messages per field "
    "(`file`, `source`, `domain`, `confirm_breaking`...).",
)


def invalid_response(exc: ContractInvalid) -> Response:
    return Response(
        {"detail": exc.summary, "problems": [p.as_dict() for p in exc.problems]},
        status=status.HTTP_400_BAD_REQUEST,
    )


def yaml_response(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type=f"{YAML}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _uploaded(request) -> tuple[bytes, str]:
    """The YAML of the request (a raw body or a multipart `file`) and the `source` asked
    for. 413 above the size limit."""
    limit = MAX_CONTRACT_BYTES + (
        MULTIPART_SLACK if request.content_type.startswith("multipart/") else 0
    )
    if body_too_large(request, limit):
        raise PayloadTooLarge(f"The contract is larger than {MAX_CONTRACT_BYTES // 1024} KiB.")
    data = request.data
    source = request.query_params.get("source", "")
    if isinstance(data, bytes):
        return data, source
    upload = data.get("file")
    if upload is None or isinstance(upload, str):
        raise DRFValidationError({"file": ["Upload the ODCS YAML file in the field `file`."]})
    if upload.size > MAX_CONTRACT_BYTES:
        raise PayloadTooLarge(str(ContractTooLarge(upload.size)))
    return upload.read(), data.get("source") or source


def _allow_missing_relations(request) -> bool:
    """The explicit `allow_missing_relations` flag: a query parameter or a multipart field."""
    value = request.query_params.get("allow_missing_relations")
    if value is None and not isinstance(request.data, bytes):
        value = request.data.get("allow_missing_relations")
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def _source(name: str) -> DataSource | None:
    if not name:
        return None
    source = DataSource.objects.filter(name=name).first()
    if source is None:
        raise DRFValidationError({"source": [f"No registered data source {name!r}."]})
    return source


class ContractEditorWritesOnly(BasePermission):
    """Reads for everyone who may see the product; imports, publishing and deleting for its
    domain's owners and stewards and admins. An invisible product is a 404 first."""

    message = "Only the domain's owners and stewards, and admins, change this product's contract."

    def has_permission(self, request, view) -> bool:
        product = view.get_product()  # 404 for a product the user may not see
        if request.method in SAFE_METHODS:
            return True
        return can_edit_product(user=request.user, product=product)


class ContractScopedView(ProductScopedMixin, GenericAPIView):
    permission_classes = [IsAuthenticated, ContractEditorWritesOnly]
    queryset = Contract.objects.none()  # for the schema

    def get_contract(self, version: str) -> Contract:
        product = self.get_product()
        try:
            contract = Contract.objects.select_related("created_by", "published_by").get(
                product=product, version=version
            )
        except Contract.DoesNotExist:
            raise NotFound(f"{product.key} has no contract version {version!r}.") from None
        contract.product = product
        return contract

    def get_serializer_context(self):
        product = self.get_product()
        return {
            **super().get_serializer_context(),
            "product": product,
            "current": contract_current(product=product),
        }


class ContractListView(ContractScopedView):
    """A product's contract versions (newest first); POST imports a draft version."""

    serializer_class = ContractSerializer
    parser_classes = [YAMLParser, LegacyYAMLParser, MultiPartParser]

    @extend_schema(parameters=[PRODUCT_KEY_PARENT], responses=ContractSerializer(many=True))
    def get(self, request, product_key: str):
        page = self.paginate_queryset(contracts_of_product(product=self.get_product()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT, SOURCE, ALLOW_MISSING_RELATIONS],
        request=IMPORT_BODY,
        responses={
            201: ContractDetailSerializer,
            400: INVALID,
            413: OpenApiResponse(description="Larger than 1 MiB."),
            415: OpenApiResponse(description="Send application/yaml or multipart/form-data."),
        },
        description="Import an ODCS v3.1 YAML contract as a draft version. The body is the "
        "YAML (`Content-Type: application/yaml`) or a multipart upload with the file in "
        "`file`. Nothing is stored when there is a problem: the 400 lists each one.",
    )
    def post(self, request, product_key: str):
        product = self.get_product()
        text, source_name = _uploaded(request)
        try:
            contract = contract_import(
                product=product,
                by=request.user,
                text=text,
                default_source=_source(source_name),
                allow_missing_relations=_allow_missing_relations(request),
            )
        except ContractTooLarge as exc:
            raise PayloadTooLarge(str(exc)) from None
        except ContractInvalid as exc:
            return invalid_response(exc)
        contract.product = product
        data = ContractDetailSerializer(contract, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)


class ContractDetailView(ContractScopedView):
    """One version: its document, what was not mapped, its breaking changes. DELETE removes
    a draft."""

    serializer_class = ContractDetailSerializer

    @extend_schema(parameters=[PRODUCT_KEY_PARENT, VERSION])
    def get(self, request, product_key: str, version: str):
        return Response(self.get_serializer(self.get_contract(version)).data)

    @extend_schema(parameters=[PRODUCT_KEY_PARENT, VERSION], responses={204: None})
    def delete(self, request, product_key: str, version: str):
        contract_delete(contract=self.get_contract(version), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ContractYAMLView(ContractScopedView):
    """The ODCS YAML of one version, as imported."""

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT, VERSION],
        responses={(200, YAML): ODCS_DOCUMENT},
    )
    def get(self, request, product_key: str, version: str):
        contract = self.get_contract(version)
        product = self.get_product()
        return yaml_response(
            contract_yaml(contract=contract), f"{product.key}-{contract.version}.odcs.yaml"
        )


class ContractPublishView(ContractScopedView):
    """Publish a draft: it becomes the current contract and is applied to the catalog."""

    serializer_class = ContractDetailSerializer

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT, VERSION],
        request=ContractPublishSerializer,
        responses={
            200: ContractDetailSerializer,
            400: INVALID,
            409: OpenApiResponse(
                ContractBreakingSerializer,
                description="Breaking changes: send `confirm_breaking: true` to publish.",
            ),
        },
        description="Breaking changes (a column removed, a type changed, a column made "
        "required, a quality tolerance tightened) answer 409 unless `confirm_breaking` is "
        "true; once published, the product's current grantees are emailed them.",
    )
    def post(self, request, product_key: str, version: str):
        contract = self.get_contract(version)
        body = ContractPublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            contract = contract_publish(
                contract=contract,
                by=request.user,
                confirm_breaking=body.validated_data["confirm_breaking"],
            )
        except BreakingChangesUnconfirmed as exc:
            return Response(
                {
                    "detail": str(exc),
                    "version": exc.version,
                    "current": exc.current,
                    "breaking_changes": [change.as_dict() for change in exc.changes],
                },
                status=status.HTTP_409_CONFLICT,
            )
        except ContractInvalid as exc:
            return invalid_response(exc)
        contract.product = self.get_product()
        return Response(self.get_serializer(contract).data)


class ContractDiffView(ContractScopedView):
    """What changes from one version to another, breaking changes first."""

    @extend_schema(
        parameters=[
            PRODUCT_KEY_PARENT,
            OpenApiParameter("from", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True),
            OpenApiParameter("to", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True),
        ],
        responses=ContractDiffSerializer,
    )
    def get(self, request, product_key: str):
        versions = {}
        for name in ("from", "to"):
            value = request.query_params.get(name, "")
            if not value:
                raise DRFValidationError({name: ["Give a version of this product's contract."]})
            versions[name] = self.get_contract(value)
        changes = contract_diff(old=versions["from"].document, new=versions["to"].document)
        return Response(
            {
                "from_version": versions["from"].version,
                "to_version": versions["to"].version,
                "breaking": any(change.breaking for change in changes),
                "changes": [change.as_dict() for change in changes],
            }
        )


class ProductODCSView(ContractScopedView):
    """The product as the catalog holds it now, as an ODCS v3.1.0 contract."""

    @extend_schema(parameters=[PRODUCT_KEY_PARENT], responses={(200, YAML): ODCS_DOCUMENT})
    def get(self, request, product_key: str):
        product = self.get_product()
        return yaml_response(
            document_dump(contract_export(product=product)), f"{product.key}.odcs.yaml"
        )


class ProductODPSView(ContractScopedView):
    """The product's Open Data Product Standard v1.0.0 descriptor."""

    @extend_schema(parameters=[PRODUCT_KEY_PARENT], responses={(200, YAML): ODPS_DOCUMENT})
    def get(self, request, product_key: str):
        product = self.get_product()
        return yaml_response(
            document_dump(product_odps(product=product)), f"{product.key}.odps.yaml"
        )


class ProductFromContractView(GenericAPIView):
    """A new draft product from an ODCS contract alone: its domain is the contract's
    `domain` (or `?domain=`), its name the contract's `name` (or `?name=`)."""

    parser_classes = [YAMLParser, LegacyYAMLParser, MultiPartParser]
    serializer_class = ProductFromContractSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "domain",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                description="Slug of the domain, when the contract names none.",
            ),
            OpenApiParameter(
                "name",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                description="The product's name, when the contract has none.",
            ),
            SOURCE,
            ALLOW_MISSING_RELATIONS,
        ],
        request=IMPORT_BODY,
        responses={
            201: ProductFromContractSerializer,
            400: INVALID,
            403: OpenApiResponse(description="Not an owner or steward of the domain."),
            413: OpenApiResponse(description="Larger than 1 MiB."),
        },
    )
    def post(self, request):
        text, source_name = _uploaded(request)
        domain = None
        slug = request.query_params.get("domain", "")
        if slug:
            domain = Domain.objects.filter(slug=slug).first()
            if domain is None:
                raise DRFValidationError({"domain": [f"No domain {slug!r}."]})
        try:
            contract = product_create_from_contract(
                by=request.user,
                text=text,
                domain=domain,
                name=request.query_params.get("name", ""),
                default_source=_source(source_name),
                allow_missing_relations=_allow_missing_relations(request),
            )
        except ContractTooLarge as exc:
            raise PayloadTooLarge(str(exc)) from None
        except ContractInvalid as exc:
            return invalid_response(exc)
        except ValidationError as exc:  # the catalog refused the product itself
            raise DRFValidationError(
                exc.message_dict
                if hasattr(exc, "error_dict")
                else {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
            ) from None
        product = DataProduct.objects.select_related("domain").get(pk=contract.product_id)
        contract.product = product
        context = {"request": request, "product": product, "current": contract}
        return Response(
            {
                "product": product.key,
                "product_url": api_url(request, "products-api:product-detail", key=product.key),
                "contract": ContractDetailSerializer(contract, context=context).data,
            },
            status=status.HTTP_201_CREATED,
        )
