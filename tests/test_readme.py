"""The READMEs' notebook examples run as written: README.md's "Notebook client" section
and portal_client/README.md, against a live portal with the demo seeded (small), with
the client installed by the README's own `pip install` line from the portal's URL, as
the demo's `owner` (the README says so) with a token from the API tokens service."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from portal.api.tokens import api_token_create
from portal.site.client_package import client_wheel_filename

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads the warehouse

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CLIENT_README = ROOT / "portal_client" / "README.md"
README_ADDRESS = "http://127.0.0.1:8000"  # what README.md writes for `make run`
CLIENT_README_ADDRESS = "https://portal.example.com"

# After the examples: what each DataFrame they made holds, as JSON on the last line.
REPORT = """
import json as _json
import pandas as _pd
print(_json.dumps({
    _name: {"rows": len(_value), "dtypes": {str(c): str(t) for c, t in _value.dtypes.items()}}
    for _name, _value in list(globals().items())
    if isinstance(_value, _pd.DataFrame)
}))
"""


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def notebook_section(text: str) -> str:
    start = text.index("## Notebook client")
    return text[start : text.index("\n## ", start + 1)]


@pytest.fixture
def demo(settings, tmp_path):
    settings.DEMO_DUCKDB_PATH = tmp_path / "warehouse.duckdb"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", "--rows-scale", "0.02", stdout=StringIO())
    yield
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA IF EXISTS warehouse CASCADE")


@pytest.fixture
def installed_client(live_server, tmp_path) -> Path:
    """The client installed as README.md says, from the live portal's URL, into a
    directory of its own (not the checkout's `portal_client/`)."""
    section = notebook_section(README.read_text())
    (line,) = [line for line in section.splitlines() if line.startswith("pip install http")]
    assert line.endswith(client_wheel_filename()), "README's install line names another version"
    target = tmp_path / "site"
    command = line.replace(README_ADDRESS, live_server.url).split()
    subprocess.run(
        [sys.executable, "-m", *command, "--no-deps", "--quiet", "--target", str(target)],
        check=True,
        timeout=120,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"},
    )
    assert (target / "portal_client" / "client.py").read_bytes() == (
        ROOT / "portal_client" / "client.py"
    ).read_bytes()
    return target


def run_examples(code: str, *, url: str, token: str, site: Path, cwd: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code + REPORT],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,  # not the checkout: the installed client is the one imported
        env={**os.environ, "PORTAL_URL": url, "PORTAL_TOKEN": token, "PYTHONPATH": str(site)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_readme_examples_run_against_the_demo(demo, live_server, installed_client, tmp_path):
    owner = get_user_model().objects.get(username="owner")
    _, token = api_token_create(user=owner, name="README test", lifetime=timedelta(days=7))
    readme_code = "\n".join(python_blocks(notebook_section(README.read_text())))
    assert "sales.orders" in readme_code
    frames = run_examples(
        readme_code, url=live_server.url, token=token, site=installed_client, cwd=tmp_path
    )
    assert frames["orders"]["rows"] > 0
    dtypes = frames["orders"]["dtypes"]
    assert list(dtypes) == ["order_id", "country", "net_amount"]
    assert dtypes["order_id"] == "int64"
    assert dtypes["net_amount"] == "float64"  # PostgreSQL numeric(12,2): a number in pandas
    assert frames["revenue"]["rows"] > 0
    assert frames["revenue"]["dtypes"]["value"] == "float64"

    # The stream example needs the demo's NATS server and producer, which `make run`
    # starts and this live server does not: tests/sharing/streams/test_portal_client.py
    # runs Portal.stream against a real NATS stream instead.
    client_code = "\n".join(
        block for block in python_blocks(CLIENT_README.read_text()) if "portal.stream(" not in block
    )
    frames = run_examples(
        client_code, url=live_server.url, token=token, site=installed_client, cwd=tmp_path
    )
    assert frames["orders"]["rows"] > 0
    assert frames["orders"]["dtypes"]["net_amount"] == "float64"
    assert frames["revenue"]["rows"] > 0
