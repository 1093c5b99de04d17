"""Request bodies the API reads besides JSON and forms.

`YAMLParser` hands the view the raw bytes of an `application/yaml` body (at most
`max_bytes`, 413 beyond): the service that takes the document parses it (yaml.SafeLoader
only) and reports its problems with their paths, so the parser never interprets it.
"""

from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.parsers import BaseParser

from products.services.contract_documents import MAX_CONTRACT_BYTES


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def body_too_large(request, limit: int) -> bool:
    """Whether the request announces a body above `limit` bytes (checked before reading)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > limit
    except ValueError:
        return False


class YAMLParser(BaseParser):
    media_type = "application/yaml"
    max_bytes = MAX_CONTRACT_BYTES

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        request = (parser_context or {}).get("request")
        too_large = PayloadTooLarge(f"The YAML body is larger than {self.max_bytes // 1024} KiB.")
        if request is not None and body_too_large(request, self.max_bytes):
            raise too_large
        data = stream.read(self.max_bytes + 1) if stream is not None else b""
        if len(data) > self.max_bytes:
            raise too_large
        return data


class LegacyYAMLParser(YAMLParser):
    """The unregistered `application/x-yaml` many tools still send."""

    media_type = "application/x-yaml"
