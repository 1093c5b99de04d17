"""Feedback API: a product's threads (`/products/<key>/feedback/`), one thread with its
replies and status changes (`/feedback/<id>/`), the response objective
(`/products/<key>/feedback/summary/`), announcements (`/products/<key>/announcements/`) and
following (`/products/<key>/follow/`). Thin like products.catalog.api.views: the product or
thread comes through the visibility rule (an invisible one is a 404); writes go to the
same services as the pages, whose ValidationError and PermissionDenied
portal.api.exceptions turns into 400 and 403.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from products.catalog.api.views import PRODUCT_KEY_PARENT, ProductScopedMixin
from products.catalog.selectors import product_get_visible_by_key
from products.choices import FeedbackKind, FeedbackStatus
from products.feedback.api.serializers import (
    AnnouncementCreateSerializer,
    AnnouncementSerializer,
    FeedbackCommentCreateSerializer,
    FeedbackCommentSerializer,
    FeedbackIncidentLinkSerializer,
    FeedbackStatusChangeCreateSerializer,
    FeedbackSummarySerializer,
    FeedbackThreadCreateSerializer,
    FeedbackThreadDetailSerializer,
    FeedbackThreadSerializer,
    FollowSerializer,
)
from products.feedback.services.announcements import (
    announcement_create,
    announcement_end,
    announcement_get,
    announcements_active,
    announcements_for_product,
)
from products.feedback.services.feedback import (
    feedback_comment_create,
    feedback_status_change,
    feedback_summary,
    feedback_thread_create,
    feedback_thread_get_visible,
    feedback_thread_link_incident,
    feedback_threads_for_product,
)
from products.feedback.services.follows import (
    product_follow,
    product_follow_state,
    product_unfollow,
)
from products.models import Announcement, DataProduct, FeedbackThread, Incident

ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
KIND = OpenApiParameter("kind", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=FeedbackKind.values)
STATUS = OpenApiParameter(
    "status",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    enum=["unresolved", "closed", *FeedbackStatus.values],
    description="A status, `unresolved` (open and acknowledged) or `closed` (resolved, "
    "declined, withdrawn).",
)
ACTIVE = OpenApiParameter(
    "active",
    OpenApiTypes.BOOL,
    OpenApiParameter.QUERY,
    description="`true`: only the announcements showing now.",
)


def _incident_of(product: DataProduct, incident_id: int | None) -> Incident | None:
    if incident_id is None:
        return None
    incident = Incident.objects.filter(pk=incident_id, product=product).first()
    if incident is None:
        raise ValidationError({"incident": [f"{product.key} has no incident {incident_id}."]})
    return incident


# --- a product's threads -----------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(parameters=[PRODUCT_KEY_PARENT, KIND, STATUS]),
    create=extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=FeedbackThreadCreateSerializer,
        responses={201: FeedbackThreadDetailSerializer},
        description="Open a thread (question, issue, request or praise). `body` is "
        "Markdown, required, at most 20,000 characters. The product's owners and stewards "
        "are notified.",
    ),
)
class ProductFeedbackViewSet(ProductScopedMixin, viewsets.GenericViewSet):
    """A product's feedback threads, most recently active first."""

    serializer_class = FeedbackThreadSerializer
    queryset = FeedbackThread.objects.none()  # for the schema; get_product() scopes reads
    filter_backends: list = []

    def list(self, request, product_key: str):
        product = self.get_product()
        kind = request.query_params.get("kind", "")
        wanted = request.query_params.get("status", "")
        if kind and kind not in FeedbackKind.values:
            raise ValidationError({"kind": ["Use question, issue, request or praise."]})
        if wanted and wanted not in ("unresolved", "closed", *FeedbackStatus.values):
            raise ValidationError(
                {
                    "status": [
                        "Use open, acknowledged, resolved, declined, withdrawn, unresolved "
                        "or closed."
                    ]
                }
            )
        page = self.paginate_queryset(
            feedback_threads_for_product(product=product, kind=kind, status=wanted)
        )
        for thread in page:
            thread.product = product
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request, product_key: str):
        product = self.get_product()
        body = FeedbackThreadCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        incident = _incident_of(product, fields.pop("incident", None))
        thread = feedback_thread_create(
            product=product,
            by=request.user,
            kind=fields["kind"],
            title=fields.get("title", ""),
            body=fields.get("body", ""),
            incident=incident,
        )
        data = thread_detail_data(request, thread.pk)
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": data["url"]})

    @extend_schema(parameters=[PRODUCT_KEY_PARENT], responses=FeedbackSummarySerializer)
    @action(detail=False, methods=["get"])
    def summary(self, request, product_key: str):
        """The response objective and how fast the team answers."""
        product = self.get_product()
        summary = feedback_summary(product=product)
        return Response(
            FeedbackSummarySerializer(
                {
                    "product": product.key,
                    "response_days": summary.response_days,
                    "median_first_response_hours": summary.median_first_response_hours,
                    "responded": summary.responded,
                    "unresolved": summary.unresolved,
                    "overdue": summary.overdue_ids,
                }
            ).data
        )


# --- one thread --------------------------------------------------------------------------


def _thread_or_404(request, pk) -> FeedbackThread:
    try:
        return feedback_thread_get_visible(user=request.user, thread_id=int(pk))
    except (FeedbackThread.DoesNotExist, TypeError, ValueError):
        raise NotFound("There is no such feedback thread.") from None


def thread_detail_data(request, pk: int) -> dict:
    """Read a thread back (fresh status, replies and status changes) and shape it."""
    thread = _thread_or_404(request, pk)
    thread.comment_list = list(thread.comments.select_related("author").order_by("created_at"))
    thread.status_change_list = list(
        thread.status_changes.select_related("by").order_by("created_at", "pk")
    )
    thread.reply_count = len(thread.comment_list)
    return FeedbackThreadDetailSerializer(thread, context={"request": request}).data


@extend_schema_view(retrieve=extend_schema(parameters=[ID]))
class FeedbackThreadViewSet(viewsets.GenericViewSet):
    """One feedback thread with its replies and status changes. Anyone who can see the
    product replies; its owners, stewards and admins change the status; the author may
    withdraw it. Replying to a closed thread reopens it for its author or an editor, and
    is refused (403) for anyone else."""

    serializer_class = FeedbackThreadDetailSerializer
    queryset = FeedbackThread.objects.none()  # for the schema; reads go through visibility
    filter_backends: list = []
    pagination_class = None

    def retrieve(self, request, pk: str):
        return Response(thread_detail_data(request, pk))

    @extend_schema(
        parameters=[ID],
        request=FeedbackCommentCreateSerializer,
        responses={200: FeedbackCommentSerializer(many=True), 201: FeedbackThreadDetailSerializer},
        description="GET: the replies, oldest first. POST: reply (`body`: Markdown, "
        "required, at most 20,000 characters); answers the thread.",
    )
    @action(detail=True, methods=["get", "post"])
    def comments(self, request, pk: str):
        thread = _thread_or_404(request, pk)
        if request.method == "GET":
            comments = thread.comments.select_related("author").order_by("created_at", "pk")
            return Response(FeedbackCommentSerializer(comments, many=True).data)
        body = FeedbackCommentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        feedback_comment_create(
            thread=thread, by=request.user, body=body.validated_data.get("body", "")
        )
        return Response(thread_detail_data(request, thread.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[ID],
        request=FeedbackStatusChangeCreateSerializer,
        responses=FeedbackThreadDetailSerializer,
        description="Editors: acknowledged, resolved or declined (a `note` is required for "
        "those two), or open to reopen. The author: withdrawn.",
    )
    @action(detail=True, methods=["post"], url_path="status")
    def change_status(self, request, pk: str):
        thread = _thread_or_404(request, pk)
        body = FeedbackStatusChangeCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        feedback_status_change(thread=thread, by=request.user, **body.validated_data)
        return Response(thread_detail_data(request, thread.pk))

    @extend_schema(
        parameters=[ID],
        request=FeedbackIncidentLinkSerializer,
        responses=FeedbackThreadDetailSerializer,
        description="Editors: link an issue thread to one of its product's incidents (null "
        "unlinks).",
    )
    @action(detail=True, methods=["post"])
    def incident(self, request, pk: str):
        thread = _thread_or_404(request, pk)
        body = FeedbackIncidentLinkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        incident = _incident_of(thread.product, body.validated_data["incident"])
        feedback_thread_link_incident(thread=thread, by=request.user, incident=incident)
        return Response(thread_detail_data(request, thread.pk))


# --- announcements -----------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(parameters=[PRODUCT_KEY_PARENT, ACTIVE]),
    create=extend_schema(
        parameters=[PRODUCT_KEY_PARENT],
        request=AnnouncementCreateSerializer,
        responses={201: AnnouncementSerializer},
        description="Editors post an announcement; a deprecation names its `replacement` "
        "(a published product's key). It is delivered at once to current grantees and "
        "followers.",
    ),
)
class AnnouncementViewSet(ProductScopedMixin, viewsets.GenericViewSet):
    """A product's announcements, newest start first."""

    serializer_class = AnnouncementSerializer
    queryset = Announcement.objects.none()  # for the schema; get_product() scopes reads
    filter_backends: list = []

    def list(self, request, product_key: str):
        product = self.get_product()
        active = request.query_params.get("active", "").lower() in ("1", "true", "yes")
        items = (
            announcements_active(product=product)
            if active
            else announcements_for_product(product=product)
        )
        page = self.paginate_queryset(items)
        for item in page:
            item.product = product
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request, product_key: str):
        product = self.get_product()
        body = AnnouncementCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        key = (fields.pop("replacement", "") or "").strip()
        replacement = None
        if key:
            try:
                replacement = product_get_visible_by_key(user=request.user, key=key)
            except DataProduct.DoesNotExist:
                raise ValidationError({"replacement": [f"There is no product {key!r}."]}) from None
        announcement = announcement_create(
            product=product, by=request.user, replacement=replacement, **fields
        )
        announcement.product = product
        return Response(self.get_serializer(announcement).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[PRODUCT_KEY_PARENT, ID],
        request=None,
        responses=AnnouncementSerializer,
        description="Editors: stop showing the announcement now.",
    )
    @action(detail=True, methods=["post"])
    def end(self, request, product_key: str, pk: str):
        product = self.get_product()
        try:
            announcement = announcement_get(product=product, announcement_id=int(pk))
        except (Announcement.DoesNotExist, ValueError):
            raise NotFound(f"{product.key} has no announcement {pk}.") from None
        announcement = announcement_end(announcement=announcement, by=request.user)
        return Response(self.get_serializer(announcement).data)


# --- following ---------------------------------------------------------------------------


class FollowViewSet(ProductScopedMixin, viewsets.GenericViewSet):
    """Whether you follow a product; follow (POST) or unfollow (DELETE) it. Followers get
    its announcements and incidents."""

    serializer_class = FollowSerializer
    filter_backends: list = []
    pagination_class = None

    def _state(self, product: DataProduct, code=status.HTTP_200_OK) -> Response:
        state = product_follow_state(product=product, user=self.request.user)
        return Response(FollowSerializer({"product": product.key, **state}).data, status=code)

    @extend_schema(parameters=[PRODUCT_KEY_PARENT], responses=FollowSerializer)
    def retrieve(self, request, product_key: str):
        return self._state(self.get_product())

    @extend_schema(parameters=[PRODUCT_KEY_PARENT], request=None, responses=FollowSerializer)
    def create(self, request, product_key: str):
        product = self.get_product()
        product_follow(product=product, by=request.user)
        return self._state(product)

    @extend_schema(parameters=[PRODUCT_KEY_PARENT], request=None, responses=FollowSerializer)
    def destroy(self, request, product_key: str):
        product = self.get_product()
        product_unfollow(product=product, by=request.user)
        return self._state(product)
