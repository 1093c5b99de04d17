"""The portal serves its notebook client as a wheel pip installs from the portal's URL
(installed for real by tests/test_readme.py): built from portal_client/, public, stable."""

from __future__ import annotations

import base64
import hashlib
import io
import tomllib
import zipfile
from pathlib import Path

from django.test import Client

from portal.site.client_package import client_wheel_filename

ROOT = Path(__file__).resolve().parents[3]
PROJECT = tomllib.loads((ROOT / "portal_client" / "pyproject.toml").read_text())["project"]


def test_the_wheel_is_named_for_pip_and_served_without_sign_in(db):
    name = client_wheel_filename()
    assert name == f"portal_client-{PROJECT['version']}-py3-none-any.whl"
    response = Client().get(f"/client/{name}")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert Client().get("/client/portal_client-9.9.9-py3-none-any.whl").status_code == 404


def test_the_wheel_holds_the_client_and_its_metadata(db):
    content = Client().get(f"/client/{client_wheel_filename()}").content
    archive = zipfile.ZipFile(io.BytesIO(content))
    version = PROJECT["version"]
    dist_info = f"portal_client-{version}.dist-info"
    for path in sorted((ROOT / "portal_client").glob("*.py")):
        assert archive.read(f"portal_client/{path.name}") == path.read_bytes()
    metadata = archive.read(f"{dist_info}/METADATA").decode()
    assert f"Version: {version}" in metadata
    for requirement in PROJECT["dependencies"]:
        assert f"Requires-Dist: {requirement}" in metadata
    assert "Root-Is-Purelib: true" in archive.read(f"{dist_info}/WHEEL").decode()
    # Every file's hash and size as RECORD states them (pip checks them on install).
    for line in archive.read(f"{dist_info}/RECORD").decode().splitlines():
        name, digest, size = line.split(",")
        if name.endswith("RECORD"):
            continue
        data = archive.read(name)
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={expected}", len(data))
    assert Client().get(f"/client/{client_wheel_filename()}").content == content  # stable
