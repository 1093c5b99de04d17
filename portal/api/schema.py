"""OpenAPI pieces shared by the API's annotations.

`FieldErrorsSerializer` documents DRF's validation error body: an object whose keys are
the request's fields (or `non_field_errors`, `detail`) and whose values are lists of
messages. A plain serializer cannot say "any key" in OpenAPI, so an extension maps it to
`additionalProperties`.
"""

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers


class FieldErrorsSerializer(serializers.Serializer):
    """`{"<field>": ["<message>", ...], ...}`: what was wrong with each request field."""


class FieldErrorsSerializerExtension(OpenApiSerializerExtension):
    target_class = FieldErrorsSerializer

    def map_serializer(self, auto_schema, direction):
        return {
            "type": "object",
            "description": "A list of messages per request field (or `non_field_errors`).",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        }
