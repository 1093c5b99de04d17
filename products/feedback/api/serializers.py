"""Shapes of the feedback API: threads with their replies and status changes,
announcements, follows, and the response objective. Like products.catalog.api.serializers: output
serializers shape models; input serializers only parse a body for a service, which holds
the rules (lengths and required texts included, so a page and the API say the same).

Markdown bodies come as written (`body`) and rendered safely (`body_html`, through
portal.core.markdown: no scripts, event handlers or javascript: links)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.core.links import api_url
from portal.core.markdown import render_markdown
from products.catalog.api.serializers import InputSerializer, enum_field
from products.choices import (
    ANSWER_EXPECTED_KINDS,
    UNRESOLVED_FEEDBACK_STATUSES,
    AnnouncementKind,
    FeedbackKind,
    FeedbackStatus,
)
from products.feedback.notifications import thread_path
from products.feedback.services.announcements import TITLE_REQUIRED
from products.feedback.services.feedback import business_days_late
from products.models import Announcement, FeedbackComment, FeedbackStatusChange, FeedbackThread

FeedbackKindField = enum_field(FeedbackKind)
FeedbackStatusField = enum_field(FeedbackStatus)
AnnouncementKindField = enum_field(AnnouncementKind)


def _username(user) -> str | None:
    return user.username if user is not None else None


class _HtmlMixin:
    @extend_schema_field(serializers.CharField(help_text="`body` rendered to safe HTML."))
    def get_body_html(self, obj) -> str:
        return str(render_markdown(obj.body))


class FeedbackCommentSerializer(_HtmlMixin, serializers.ModelSerializer):
    author = serializers.SerializerMethodField()
    body_html = serializers.SerializerMethodField()

    class Meta:
        model = FeedbackComment
        fields = ["id", "author", "by_team", "body", "body_html", "created_at"]
        read_only_fields = fields

    def get_author(self, comment: FeedbackComment) -> str | None:
        return _username(comment.author)


class FeedbackStatusChangeSerializer(serializers.ModelSerializer):
    by = serializers.SerializerMethodField()
    from_status = FeedbackStatusField(read_only=True)
    to_status = FeedbackStatusField(read_only=True)

    class Meta:
        model = FeedbackStatusChange
        fields = ["id", "by", "from_status", "to_status", "note", "created_at"]
        read_only_fields = fields

    def get_by(self, change: FeedbackStatusChange) -> str | None:
        return _username(change.by)


class FeedbackThreadSerializer(_HtmlMixin, serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField(help_text="The thread's page in the portal.")
    product = serializers.CharField(source="product.key", read_only=True)
    author = serializers.SerializerMethodField()
    kind = FeedbackKindField(read_only=True)
    status = FeedbackStatusField(read_only=True)
    body_html = serializers.SerializerMethodField()
    reply_count = serializers.IntegerField(read_only=True)
    overdue = serializers.SerializerMethodField(
        help_text="Open or acknowledged, unanswered, past the product's response objective."
    )

    class Meta:
        model = FeedbackThread
        fields = [
            "id",
            "url",
            "page_url",
            "product",
            "kind",
            "status",
            "title",
            "author",
            "body",
            "body_html",
            "incident",
            "resolution_note",
            "reply_count",
            "created_at",
            "last_activity_at",
            "first_response_at",
            "closed_at",
            "overdue",
        ]
        read_only_fields = fields

    def get_url(self, thread: FeedbackThread) -> str:
        return api_url(
            self.context.get("request"), "products-api:feedback-thread-detail", pk=thread.pk
        )

    def get_page_url(self, thread: FeedbackThread) -> str:
        request = self.context.get("request")
        path = thread_path(thread)
        return request.build_absolute_uri(path) if request is not None else path

    def get_author(self, thread: FeedbackThread) -> str | None:
        return _username(thread.author)

    def get_overdue(self, thread: FeedbackThread) -> bool:
        if (
            thread.first_response_at is not None
            or thread.status not in UNRESOLVED_FEEDBACK_STATUSES
            or thread.kind not in ANSWER_EXPECTED_KINDS
        ):
            return False
        days = thread.product.feedback_response_days
        now = self.context.get("now") or timezone.now()
        return business_days_late(opened_at=thread.created_at, days=days, now=now) > 0


class FeedbackThreadDetailSerializer(FeedbackThreadSerializer):
    comments = FeedbackCommentSerializer(many=True, read_only=True, source="comment_list")
    status_changes = FeedbackStatusChangeSerializer(
        many=True, read_only=True, source="status_change_list"
    )

    class Meta(FeedbackThreadSerializer.Meta):
        fields = [*FeedbackThreadSerializer.Meta.fields, "comments", "status_changes"]
        read_only_fields = fields


class FeedbackThreadCreateSerializer(InputSerializer):
    kind = FeedbackKindField()
    title = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    body = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, help_text="Markdown."
    )
    incident = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Id of one of the product's incidents (issues; the product's editors only).",
    )


class FeedbackCommentCreateSerializer(InputSerializer):
    body = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, help_text="Markdown."
    )


class FeedbackStatusChangeCreateSerializer(InputSerializer):
    status = FeedbackStatusField()
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Required to resolve or decline: the resolution note.",
    )


class FeedbackIncidentLinkSerializer(InputSerializer):
    incident = serializers.IntegerField(
        allow_null=True, help_text="An incident id of the thread's product; null unlinks."
    )


class FeedbackSummarySerializer(serializers.Serializer):
    product = serializers.CharField()
    response_days = serializers.IntegerField(
        help_text="The response objective: business days (Monday to Friday)."
    )
    median_first_response_hours = serializers.FloatField(
        allow_null=True,
        help_text="Median hours from opening to the team's first answer, threads opened in "
        "the last 90 days; null without any answer.",
    )
    responded = serializers.IntegerField(help_text="Threads of the 90 days with an answer.")
    unresolved = serializers.IntegerField(help_text="Open or acknowledged threads.")
    overdue = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Ids of unresolved threads unanswered past the objective.",
    )


# --- announcements -----------------------------------------------------------------------


class ProductRefSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    url = serializers.CharField()


class AnnouncementSerializer(_HtmlMixin, serializers.ModelSerializer):
    kind = AnnouncementKindField(read_only=True)
    body_html = serializers.SerializerMethodField()
    active = serializers.SerializerMethodField()
    replacement = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = Announcement
        fields = [
            "id",
            "kind",
            "title",
            "body",
            "body_html",
            "starts_at",
            "ends_at",
            "active",
            "replacement",
            "created_by",
            "created_at",
            "delivered_at",
            "recipient_count",
        ]
        read_only_fields = fields

    def get_active(self, announcement: Announcement) -> bool:
        return announcement.is_active(self.context.get("now"))

    @extend_schema_field(ProductRefSerializer(allow_null=True))
    def get_replacement(self, announcement: Announcement) -> dict | None:
        product = announcement.replacement
        if product is None:
            return None
        return {
            "key": product.key,
            "name": product.name,
            "url": api_url(
                self.context.get("request"), "products-api:product-detail", key=product.key
            ),
        }

    def get_created_by(self, announcement: Announcement) -> str | None:
        return _username(announcement.created_by)


class AnnouncementCreateSerializer(InputSerializer):
    kind = AnnouncementKindField()
    # Required here as in the service (which also refuses a blank one), so a body without
    # it is a 400 naming the field.
    title = serializers.CharField(allow_blank=True, error_messages={"required": TITLE_REQUIRED})
    body = serializers.CharField(required=False, allow_blank=True, help_text="Markdown.")
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    replacement = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Deprecations: the key of the product consumers should move to.",
    )


class FollowSerializer(serializers.Serializer):
    product = serializers.CharField()
    following = serializers.BooleanField()
    followers = serializers.IntegerField()
