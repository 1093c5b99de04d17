"""Absolute links to the portal, written one way: links sent outside a request (emails,
webhooks, descriptors) on the portal's public address (PORTAL_URL, read into
settings.PORTAL_SITE_URL), and API links as the client reached the API."""

from __future__ import annotations

from django.conf import settings
from rest_framework.reverse import reverse


def absolute_url(path: str) -> str:
    """`path` (an absolute path, as reverse() gives) on the portal's public address."""
    return settings.PORTAL_SITE_URL.rstrip("/") + path


def api_url(request, name: str, **kwargs) -> str:
    """The URL of the API route `name` (namespaced: "products-api:product-detail") on the
    scheme and host of `request`; the bare path when there is no request."""
    return reverse(name, kwargs=kwargs, request=request)
