"""Shapes of the usage and retirement API. Output serializers shape what the selectors
return; input serializers only parse a body for a retirement service, which holds the
rules (notice period bounds, who may object, which step is allowed when).

Names of people: readers and objectors are named to the product's editors only (the
serializer context's `show_names`), null for everyone else."""

from __future__ import annotations

from rest_framework import serializers

from portal.core.links import api_url
from products.catalog.api.serializers import LifecycleStatusField
from sharing.choices import Channel


def _by_channel_field():
    return serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Reads per channel: " + ", ".join(f"`{c}`" for c in Channel.values) + ".",
    )


class UsageProductSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    domain = serializers.CharField(source="domain.slug")
    status = LifecycleStatusField()
    url = serializers.SerializerMethodField()

    def get_url(self, product) -> str:
        return api_url(self.context.get("request"), "products-api:product-detail", key=product.key)


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    views = serializers.IntegerField(help_text="Page views (editors' not counted).")
    viewers = serializers.IntegerField(help_text="Distinct people who viewed the page.")
    reads = serializers.IntegerField(help_text="Data reads, every channel.")
    readers = serializers.IntegerField(help_text="Distinct signed-in readers.")
    by_channel = _by_channel_field()


class TopReaderSerializer(serializers.Serializer):
    username = serializers.CharField()
    reads = serializers.IntegerField()
    last_read_at = serializers.DateTimeField()


class ProductUsageSerializer(serializers.Serializer):
    product = serializers.CharField(source="product.key")
    days = serializers.IntegerField()
    start = serializers.DateField()
    end = serializers.DateField()
    views = serializers.IntegerField()
    viewers = serializers.IntegerField()
    reads = serializers.IntegerField()
    readers = serializers.IntegerField()
    by_channel = _by_channel_field()
    last_read_at = serializers.DateTimeField(allow_null=True)
    series = UsageDaySerializer(many=True)
    top_readers = TopReaderSerializer(
        many=True,
        allow_null=True,
        help_text="The most active readers by name: the product's editors only, null for "
        "everyone else.",
    )


class UsageRowSerializer(serializers.Serializer):
    product = UsageProductSerializer()
    use = serializers.IntegerField(help_text="Reads + page views, last 30 days.")
    reads = serializers.IntegerField()
    readers = serializers.IntegerField()
    views = serializers.IntegerField()
    use_previous = serializers.IntegerField(help_text="Reads + page views, the 30 days before.")
    reads_previous = serializers.IntegerField()
    views_previous = serializers.IntegerField()
    growth = serializers.IntegerField()
    growth_percent = serializers.FloatField(
        allow_null=True, help_text="Null when there was no use before."
    )


class UnusedRowSerializer(serializers.Serializer):
    product = UsageProductSerializer()
    last_read_at = serializers.DateTimeField(allow_null=True)
    retirement_status = serializers.SerializerMethodField()
    can_propose = serializers.SerializerMethodField()

    def get_retirement_status(self, row) -> str | None:
        return row.proposal.status if row.proposal else None

    def get_can_propose(self, row) -> bool:
        return row.can_edit and row.proposal is None


class UnusedSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Every unused product in scope.")
    days = serializers.IntegerField()
    products = UnusedRowSerializer(many=True, help_text="The first 50, by domain and name.")


class UsageDashboardSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["all", "mine"])
    as_of = serializers.DateTimeField(
        allow_null=True,
        help_text="When the figures were computed (hourly); null until the first time.",
    )
    window_days = serializers.IntegerField()
    recent_start = serializers.DateField(allow_null=True)
    previous_start = serializers.DateField(allow_null=True)
    end = serializers.DateField(allow_null=True)
    most_used = UsageRowSerializer(many=True)
    fastest_growing = UsageRowSerializer(many=True)
    unused = UnusedSerializer()


# --- retirement -------------------------------------------------------------------------
