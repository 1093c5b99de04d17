"""Links to the portal are written one way: emails and descriptors on the public address
(PORTAL_URL), API links on the address the client used."""

from django.urls import reverse
from rest_framework.test import APIRequestFactory

from portal.core.links import absolute_url, api_url


def test_a_path_on_the_public_address_has_one_slash(settings):
    settings.PORTAL_SITE_URL = "https://portal.example.org/"
    assert absolute_url("/my/access/") == "https://portal.example.org/my/access/"
    settings.PORTAL_SITE_URL = "https://portal.example.org"
    assert absolute_url("/my/access/") == "https://portal.example.org/my/access/"


def test_an_api_link_uses_the_clients_address(settings):
    settings.ALLOWED_HOSTS = ["data.internal"]
    request = APIRequestFactory().get("/api/v1/", HTTP_HOST="data.internal")
    path = reverse("products-api:product-detail", kwargs={"key": "sales.orders"})
    assert api_url(request, "products-api:product-detail", key="sales.orders") == (
        f"http://data.internal{path}"
    )


def test_an_api_link_without_a_request_is_its_path():
    path = reverse("definitions-api:metric-values", kwargs={"key": "sales.revenue"})
    assert api_url(None, "definitions-api:metric-values", key="sales.revenue") == path
    assert path.startswith("/api/")
