"""Access API: requests, grants, bulk revocation, "my access" and the audit. Views parse
input, call the services and selectors the pages call, and shape output. A product comes
through the visibility rule (ProductScopedMixin): an invisible product is a 404."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from products.catalog.api.views import PRODUCT_KEY_PARENT, ProductScopedMixin
from products.catalog.permissions import managers_only_message
from sharing.access.admin_forms import AuditFilterForm, audit_cursors
from sharing.access.api.serializers import (
    AccessEventSerializer,
    AccessRequestApproveSerializer,
    AccessRequestCreateSerializer,
    AccessRequestSerializer,
    GrantCreateSerializer,
    GrantSerializer,
    MyAccessSerializer,
    ReasonSerializer,
    RevokeForUserResultSerializer,
    RevokeForUserSerializer,
)
from sharing.access.audit_selectors import (
    AUDIT_PAGE_ROWS,
    AuditCursor,
    AuditFilters,
    access_events,
    audit_page,
    can_view_audit,
)
from sharing.access.selectors import (
    access_requests_for,
    access_requests_of_user,
    grants_of_product,
    grants_of_user,
)
from sharing.access.services.common import can_manage_access
from sharing.access.services.grants import grant_create, grant_revoke, grants_revoke_for_user
from sharing.access.services.requests import (
    access_request_approve,
    access_request_cancel,
    access_request_create,
    access_request_deny,
)
from sharing.choices import AuditAction, Channel
from sharing.models import AccessEvent, AccessGrant, AccessRequest

ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
AUDIT_API_MAX_PAGE = 200


def _user_by_username(username: str, field: str = "username"):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationError({field: [f"There is no user {username!r}."]})
    return user


@extend_schema_view(
    list=extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        description="The product's access requests: all of them for its domain's owners, "
        "stewards and admins; your own for everyone else.",
    ),
    create=extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=AccessRequestCreateSerializer,
        responses={201: AccessRequestSerializer},
        description="Ask to read the product. Auto-approved at once when the product "
        "allows it and every column asked for is public or internal.",
    ),
)
class AccessRequestViewSet(ProductScopedMixin, viewsets.GenericViewSet):
    serializer_class = AccessRequestSerializer
    queryset = AccessRequest.objects.none()  # for the schema; get_product() scopes reads
    filter_backends: list = []

    def get_request_object(self) -> AccessRequest:
        product = self.get_product()
        try:
            # The services answer 403 to anyone who may not act on it.
            access_request = AccessRequest.objects.select_related("requester").get(
                product=product, pk=int(self.kwargs["pk"])
            )
        except (AccessRequest.DoesNotExist, ValueError):
            raise NotFound("There is no such access request.") from None
        access_request.product = product
        return access_request

    def _respond(self, access_request, status_code=status.HTTP_200_OK):
        return Response(self.get_serializer(access_request).data, status=status_code)

    def list(self, request, product_key: str):
        product = self.get_product()
        page = self.paginate_queryset(access_requests_for(user=request.user, product=product))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request, product_key: str):
        product = self.get_product()  # 404 before any validation message
        body = AccessRequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        access_request = access_request_create(
            product=product, by=request.user, **body.validated_data
        )
        return self._respond(access_request, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT, ID],
        request=AccessRequestApproveSerializer,
        responses={201: GrantSerializer},
        description="Approve a pending request, optionally narrowing its columns, adding "
        "a row filter or shortening its duration. Answers the grant created.",
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, product_key: str, pk: str):
        access_request = self.get_request_object()
        body = AccessRequestApproveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        grant = access_request_approve(
            request=access_request, by=request.user, **body.validated_data
        )
        return Response(GrantSerializer(grant).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT, ID],
        request=ReasonSerializer,
        responses=AccessRequestSerializer,
    )
    @action(detail=True, methods=["post"])
    def deny(self, request, product_key: str, pk: str):
        access_request = self.get_request_object()
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._respond(
            access_request_deny(
                request=access_request, by=request.user, reason=body.validated_data["reason"]
            )
        )

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT, ID], request=None, responses=AccessRequestSerializer
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, product_key: str, pk: str):
        access_request = self.get_request_object()
        return self._respond(access_request_cancel(request=access_request, by=request.user))


@extend_schema_view(
    list=extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        description="Active grants of the product (its domain's owners, stewards, admins).",
    ),
    create=extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=GrantCreateSerializer,
        responses={201: GrantSerializer},
        description="Grant read access directly (the domain's owners and admins).",
    ),
)
class GrantViewSet(ProductScopedMixin, viewsets.GenericViewSet):
    serializer_class = GrantSerializer
    queryset = AccessGrant.objects.none()  # for the schema; get_product() scopes reads
    filter_backends: list = []

    def _managed_product(self):
        product = self.get_product()
        if not can_manage_access(user=self.request.user, product=product):
            raise PermissionDenied(
                managers_only_message(product.domain, "see and revoke its grants")
            )
        return product

    def list(self, request, product_key: str):
        page = self.paginate_queryset(grants_of_product(product=self._managed_product()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request, product_key: str):
        product = self.get_product()
        body = GrantCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        username, group_name = data.pop("username", None), data.pop("group", None)
        user = _user_by_username(username) if username else None
        group = None
        if group_name:
            group = Group.objects.filter(name=group_name).first()
            if group is None:
                raise ValidationError({"group": [f"There is no group {group_name!r}."]})
        grant = grant_create(product=product, by=request.user, user=user, group=group, **data)
        return Response(self.get_serializer(grant).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT, ID], request=ReasonSerializer, responses=GrantSerializer
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, product_key: str, pk: str):
        product = self._managed_product()
        try:
            grant = grants_of_product(product=product, active=False).get(pk=int(pk))
        except (AccessGrant.DoesNotExist, ValueError):
            raise NotFound("There is no such grant.") from None
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        grant = grant_revoke(grant=grant, by=request.user, reason=body.validated_data["reason"])
        return Response(self.get_serializer(grant).data)


class GrantsRevokeForUserView(GenericAPIView):
    serializer_class = RevokeForUserSerializer

    @extend_schema(
        request=RevokeForUserSerializer,
        responses=RevokeForUserResultSerializer,
        description="Revoke every active grant of a person (for example one who left) on "
        "the products you manage (admins: every product). One audit event per grant.",
    )
    def post(self, request):
        body = RevokeForUserSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = _user_by_username(body.validated_data["username"])
        count = grants_revoke_for_user(
            user=user, by=request.user, reason=body.validated_data["reason"]
        )
        return Response({"username": user.username, "revoked": count})


class MyAccessView(GenericAPIView):
    serializer_class = MyAccessSerializer

    @extend_schema(
        responses=MyAccessSerializer,
        description="Your active grants (with their expiry) and your access requests.",
    )
    def get(self, request):
        user = request.user
        grants = grants_of_user(user=user).filter(
            revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
        data = {"grants": list(grants), "requests": list(access_requests_of_user(user=user)[:200])}
        return Response(MyAccessSerializer(data).data)


AUDIT_PARAMETERS = [
    OpenApiParameter(
        "product", OpenApiTypes.STR, description="Part of a product's name or key, any case."
    ),
    OpenApiParameter(
        "person",
        OpenApiTypes.STR,
        description="Part of the actor's or reader's username, name or e-mail, any case "
        "(`user` is read too, as before).",
    ),
    OpenApiParameter("action", OpenApiTypes.STR, enum=AuditAction.values),
    OpenApiParameter("channel", OpenApiTypes.STR, enum=Channel.values),
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="From this day."),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Up to this day, included."),
    OpenApiParameter(
        "after", OpenApiTypes.STR, description="A cursor: the page after it (older events)."
    ),
    OpenApiParameter(
        "before", OpenApiTypes.STR, description="A cursor: the page before it (newer events)."
    ),
    OpenApiParameter(
        "page_size",
        OpenApiTypes.INT,
        description=f"Events a page, 1 to {AUDIT_API_MAX_PAGE} (default {AUDIT_PAGE_ROWS}).",
    ),
]


def _page_size(raw: str | None) -> int:
    try:
        return min(max(int(raw), 1), AUDIT_API_MAX_PAGE) if raw else AUDIT_PAGE_ROWS
    except ValueError:
        raise ValidationError({"page_size": ["Give a whole number of events."]}) from None


class AccessEventListView(GenericAPIView):
    serializer_class = AccessEventSerializer
    queryset = AccessEvent.objects.none()  # for the schema; access_events scopes reads
    filter_backends: list = []
    pagination_class = None

    @extend_schema(
        parameters=AUDIT_PARAMETERS,
        responses=inline_serializer(
            "AccessEventPage",
            {
                "next": serializers.CharField(allow_null=True, help_text="Older events."),
                "previous": serializers.CharField(allow_null=True, help_text="Newer events."),
                "results": AccessEventSerializer(many=True),
            },
        ),
        description="The audit, newest first: every read and access decision. Admins see "
        "all; domain owners see their domains' products. Paged by cursor: follow `next` "
        "(older events) and `previous` (newer ones); pages do not shift as events are "
        "written, and their cost does not grow with depth. Times are ISO 8601.",
    )
    def get(self, request):
        if not can_view_audit(user=request.user):
            raise PermissionDenied("The audit is for admins and domain owners.")
        form = AuditFilterForm(request.query_params)
        if not form.is_valid():
            raise ValidationError({f: list(errs) for f, errs in form.errors.items()})
        for name in ("after", "before"):
            raw = request.query_params.get(name)
            if raw and AuditCursor.decode(raw) is None:
                raise ValidationError({name: ["This cursor is not one the audit gave."]})
        after, before = audit_cursors(request.query_params)
        filters: AuditFilters = form.filters()
        page = audit_page(
            access_events(user=request.user, filters=filters),
            after=after,
            before=before,
            size=_page_size(request.query_params.get("page_size")),
        )

        def link(name: str, cursor) -> str | None:
            if cursor is None:
                return None
            query = request.query_params.copy()
            query.pop("after", None)
            query.pop("before", None)
            query[name] = cursor.encode()
            return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")

        return Response(
            {
                "next": link("after", page.older),
                "previous": link("before", page.newer),
                "results": self.get_serializer(page.events, many=True).data,
            }
        )
