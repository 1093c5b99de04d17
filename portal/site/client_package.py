"""The notebook client (`portal_client/`) served by the portal as a wheel, so that anyone
who can reach the portal installs the client that matches it with one line:

    pip install http://portal.example.com/client/portal_client-0.1.0-py3-none-any.whl

The wheel is built in memory from the files of `portal_client/` (pure Python, no build
step, nothing committed), once per process, with its name, version and dependencies read
from `portal_client/pyproject.toml`. It is public like the client's source: pip cannot
sign in, and the wheel holds no data.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tomllib
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse
from django.views import View

CLIENT_DIR = Path(settings.BASE_DIR) / "portal_client"
PACKAGE = "portal_client"
TAG = "py3-none-any"
# A fixed timestamp for every file: the same sources give the same wheel, byte for byte.
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ClientWheel:
    filename: str
    content: bytes


def _project() -> dict:
    with (CLIENT_DIR / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["project"]


def client_version() -> str:
    return _project()["version"]


def client_wheel_filename() -> str:
    """`portal_client-<version>-py3-none-any.whl`, the name pip needs at the URL's end."""
    return f"{PACKAGE}-{client_version()}-{TAG}.whl"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


@cache
def client_wheel() -> ClientWheel:
    """The client as a wheel (PEP 427): the package's modules and its metadata."""
    project = _project()
    version = project["version"]
    dist_info = f"{PACKAGE}-{version}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project.get('requires-python', '>=3.10')}",
        *(f"Requires-Dist: {requirement}" for requirement in project.get("dependencies", [])),
        "Description-Content-Type: text/markdown",
        "",
        (CLIENT_DIR / "README.md").read_text(encoding="utf-8"),
    ]
    files: list[tuple[str, bytes]] = [
        (f"{PACKAGE}/{path.name}", path.read_bytes()) for path in sorted(CLIENT_DIR.glob("*.py"))
    ]
    files += [
        (f"{dist_info}/METADATA", "\n".join(metadata).encode()),
        (
            f"{dist_info}/WHEEL",
            f"Wheel-Version: 1.0\nGenerator: portal\nRoot-Is-Purelib: true\nTag: {TAG}\n".encode(),
        ),
        (f"{dist_info}/top_level.txt", f"{PACKAGE}\n".encode()),
    ]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files)
    files.append((f"{dist_info}/RECORD", (record + f"{dist_info}/RECORD,,\n").encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return ClientWheel(filename=client_wheel_filename(), content=buffer.getvalue())


class ClientWheelView(View):
    """GET: the wheel, for pip (no sign-in: pip cannot, and it is the client's source)."""

    def get(self, request):
        wheel = client_wheel()
        response = HttpResponse(wheel.content, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{wheel.filename}"'
        response["Cache-Control"] = "public, max-age=3600"
        return response
