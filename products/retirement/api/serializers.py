"""Serializers of the retirement API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from products.catalog.api.serializers import InputSerializer, enum_field
from products.choices import RetirementEventKind, RetirementStatus

RetirementStatusField = enum_field(RetirementStatus)
RetirementEventKindField = enum_field(RetirementEventKind)


class RetirementObjectionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.SerializerMethodField(
        help_text="The objector: named to the product's editors and to the objector."
    )
    reason = serializers.CharField()
    at = serializers.DateTimeField()

    def get_user(self, objection) -> str | None:
        request = self.context.get("request")
        own = request is not None and objection.user_id == request.user.pk
        return objection.user.username if self.context.get("show_names") or own else None


class RetirementEventSerializer(serializers.Serializer):
    kind = RetirementEventKindField()
    at = serializers.DateTimeField()
    by = serializers.SerializerMethodField()
    message = serializers.CharField()
    detail = serializers.DictField()
    told = serializers.SerializerMethodField(help_text="How many people were emailed.")

    def get_by(self, event) -> str | None:
        if event.by_id is None:
            return None
        if event.kind == RetirementEventKind.OBJECTED and not self.context.get("show_names"):
            return None
        return event.by.username

    def get_told(self, event) -> int:
        return len(event.recipients)


class RetirementProposalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    product = serializers.CharField(source="product.key")
    status = RetirementStatusField()
    reason = serializers.CharField()
    proposed_by = serializers.CharField(source="proposed_by.username", allow_null=True)
    proposed_at = serializers.DateTimeField()
    notice_days = serializers.IntegerField()
    notice_ends_at = serializers.DateTimeField()
    deprecated_at = serializers.DateTimeField(allow_null=True)
    retire_at = serializers.DateTimeField(allow_null=True)
    retired_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    close_reason = serializers.CharField()
    objections = serializers.SerializerMethodField()
    events = serializers.SerializerMethodField()

    @extend_schema_field(RetirementObjectionSerializer(many=True))
    def get_objections(self, proposal) -> list[dict]:
        objections = self.context.get("objections")
        if objections is None:
            objections = list(proposal.objections.select_related("user"))
        return RetirementObjectionSerializer(objections, many=True, context=self.context).data

    @extend_schema_field(RetirementEventSerializer(many=True))
    def get_events(self, proposal) -> list[dict]:
        events = self.context.get("events")
        if events is None:
            events = list(proposal.events.select_related("by"))
        return RetirementEventSerializer(events, many=True, context=self.context).data


class RetirementProposeSerializer(InputSerializer):
    reason = serializers.CharField(
        help_text="Why retire it, and what consumers should use instead."
    )
    notice_days = serializers.IntegerField(
        required=False, help_text="Days consumers have to object: at least 7, default 30."
    )


class RetirementReasonSerializer(InputSerializer):
    reason = serializers.CharField()


class RetirementWithdrawSerializer(InputSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")
