"""The shapes of the events API: a CloudEvents 1.0 envelope (portal.core.events.event_envelope)
and a cursor page of them. Output only: they document the schema; the envelope itself is
built once, by event_envelope, for every channel."""

from rest_framework import serializers


class EventEnvelopeSerializer(serializers.Serializer):
    specversion = serializers.CharField(help_text='Always "1.0".')
    id = serializers.UUIDField(help_text="CloudEvents id: unique; de-duplicate by it.")
    source = serializers.CharField(help_text="The portal's address.")
    type = serializers.CharField(help_text="portal.<thing>.<what> (docs/events.md).")
    subject = serializers.CharField(required=False, help_text="The product's key.")
    time = serializers.DateTimeField()
    datacontenttype = serializers.CharField()
    sequence = serializers.CharField(
        help_text="The outbox id, increasing: pass it as `after` (or Last-Event-ID) to resume."
    )
    data = serializers.JSONField()


class EventPageSerializer(serializers.Serializer):
    next = serializers.URLField(
        allow_null=True,
        help_text="The next page (after=<the last sequence here>); null when this page was "
        "the last one so far: ask again with after=<last sequence> later.",
    )
    last_sequence = serializers.IntegerField(
        help_text="The last sequence of this page (or `after` when empty): where to resume."
    )
    results = EventEnvelopeSerializer(many=True)
