"""The OpenAPI schema generates without warnings, and the docs page works on a closed
network (every asset from our own static files)."""

import re

import yaml
from django.core.management import call_command


def test_schema_generates_and_validates_without_warnings(tmp_path):
    path = tmp_path / "schema.yaml"
    # --fail-on-warn: a view the generator cannot describe fails this test.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    schema = yaml.safe_load(path.read_text())
    paths = schema["paths"]
    for expected in (
        "/api/v1/auth/token/",
        "/api/v1/domains/",
        "/api/v1/domains/{slug}/",
        "/api/v1/products/",
        "/api/v1/products/{key}/",
        "/api/v1/products/{key}/publish/",
        "/api/v1/products/{key}/deprecate/",
        "/api/v1/products/{product_key}/ports/",
        "/api/v1/products/{product_key}/ports/{slug}/",
        "/api/v1/products/{product_key}/ports/{slug}/schema-refresh/",
        "/api/v1/products/{product_key}/ports/{port_slug}/columns/",
        "/api/v1/products/{product_key}/ports/{port_slug}/columns/{name}/",
        "/api/v1/schema-refresh-runs/{id}/",
        "/api/v1/sources/",
    ):
        assert expected in paths, expected
    list_params = {p["name"] for p in paths["/api/v1/products/"]["get"]["parameters"]}
    assert {"q", "domain", "tag", "status", "page", "page_size"} <= list_params
    refresh = paths["/api/v1/products/{product_key}/ports/{slug}/schema-refresh/"]["post"]
    assert "202" in refresh["responses"]
    # No secret-bearing field is ever part of a response.
    for name, component in schema["components"]["schemas"].items():
        if not name.endswith("Request"):
            assert "password_env" not in component.get("properties", {}), name


def test_schema_endpoint_serves_openapi_3(client, db):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_docs_page_uses_only_local_static_files(client, db):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "/static/drf_spectacular_sidecar/" in html
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert urls, html
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), f"external asset {url}"
    for cdn in ("jsdelivr", "unpkg", "cdnjs", "googleapis"):
        assert cdn not in html
