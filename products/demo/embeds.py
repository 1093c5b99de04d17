"""The demo's embed: Sales' net revenue per month as a line chart, locked to one country
(the `tenant` parameter), and its host application "Demo host", whose backend is the
sample page `manage.py embed_demo_host` serves on another local port (`make run` starts
it; see docs/embeds-demo.md).

The portal stores no private key: the demo host's Ed25519 private key is a file beside the
demo warehouse (var/demo/embed-host-key.pem by default, never in the database), written
when the demo is seeded and missing; the embed's application holds its public key, under
a key id derived from it. Created through the embeds' services by the Sales owner, so the
embed reads with the owner's access. Idempotent: seeding again keeps the key pair, the
embed and its application, and never undoes what people changed since.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.conf import settings
from django.utils import timezone

from products.models import Metric
from sharing.choices import EmbedChart, EmbedKeyAlgorithm
from sharing.embeds.host import key_pair
from sharing.embeds.services.apps import embed_app_create, embed_key_add, embed_key_remove
from sharing.embeds.services.embeds import embed_create, origin_normalise
from sharing.models import Embed, EmbedApp, EmbedKey

METRIC_KEY = "sales.revenue"
TITLE = "Net revenue per month"
APP_NAME = "Demo host"
OWNER = "owner"  # the Sales domain's owner: the embed reads with their access
KID_PREFIX = "demo-host-"
KEY_FILE = Path("demo") / "embed-host-key.pem"
# The host page's tenants: the value its tokens lock `tenant` to (a country code of the
# metric's `country` dimension), and the name the page shows.
TENANTS = (("NL", "Netherlands"), ("DE", "Germany"), ("FR", "France"))
HOST_NAMES = ("127.0.0.1", "localhost")
DEFAULT_PORTAL_PORT = 8000


class DemoHostUnavailable(Exception):
    """The demo's host page cannot sign for the embed; the message says why and what to run."""


@dataclass(frozen=True)
class DemoHost:
    """What the host application's backend holds: which embed, its key id, its private key."""

    embed_id: str
    title: str
    kid: str
    private_key: str
    key_file: str
    tenants: tuple[tuple[str, str], ...] = TENANTS


def key_path() -> Path:
    """The demo host's private key: beside the demo warehouse (var/ by default)."""
    return Path(settings.DEMO_DUCKDB_PATH).parent / KEY_FILE


def host_port(portal_port: int | None = None) -> int:
    """The host page's port: EMBED_DEMO_HOST_PORT, else the portal's port (PORT) + 1."""
    if portal_port is None:
        portal_port = int(os.environ.get("PORT") or DEFAULT_PORTAL_PORT)
    return int(os.environ.get("EMBED_DEMO_HOST_PORT") or portal_port + 1)


def host_origins(port: int) -> list[str]:
    """The origins a browser gives the host page on `port`."""
    return [f"http://{name}:{port}" for name in HOST_NAMES]


def _private_key_ensure(path: Path) -> tuple[str, bool]:
    """The private key's PEM, written (readable by its owner only) when missing."""
    if path.exists():
        return path.read_text(), False
    private_pem, _ = key_pair(EmbedKeyAlgorithm.EDDSA)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(private_pem)
    return private_pem, True


def _public_key(private_pem: str) -> tuple[str, str]:
    """(kid, public PEM) of a private key: the kid names the key, so a new key pair (the
    file deleted) is registered beside the old one, never mistaken for it."""
    try:
        private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    except (ValueError, TypeError):
        private = None
    if not isinstance(private, ed25519.Ed25519PrivateKey):
        raise DemoHostUnavailable(
            f"{key_path()} is not an Ed25519 private key: delete it and seed again."
        )
    public = private.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return KID_PREFIX + hashlib.sha256(raw).hexdigest()[:16], pem


def _demo_embed() -> Embed | None:
    return (
        Embed.objects.filter(metric__key=METRIC_KEY, title=TITLE)
        .select_related("product", "metric")
        .order_by("created_at")
        .first()
    )


def embeds_seed(*, users: dict, log: Callable[[str], None]) -> dict[str, int]:
    """The demo embed, its host application and the host's key pair, each when missing."""
    created = {"embeds": 0, "embed applications": 0, "embed keys": 0}
    owner = users.get(OWNER)
    metric = Metric.objects.filter(key=METRIC_KEY).select_related("port__product").first()
    if owner is None or metric is None:
        return created
    embed = _demo_embed()
    if embed is None:
        embed = embed_create(
            by=owner,
            product=metric.port.product,
            title=TITLE,
            chart=EmbedChart.LINE,
            metric=metric,
            grain="month",
            locked_params={"tenant": "country"},
            allowed_origins=host_origins(host_port()),
            cache_seconds=60,
        )
        created["embeds"] += 1
        log(f"Created the embed {TITLE!r} of {metric.key}, locked to one country per token.")

    private_pem, written = _private_key_ensure(key_path())
    if written:
        log(f"Wrote the demo host's private key to {key_path()}.")
    kid, public_pem = _public_key(private_pem)
    app = EmbedApp.objects.filter(embed=embed, name=APP_NAME).first()
    if app is None:
        embed_app_create(
            by=owner,
            name=APP_NAME,
            embed=embed,
            kid=kid,
            algorithm=EmbedKeyAlgorithm.EDDSA,
            public_key=public_pem,
            description="The sample host page `manage.py embed_demo_host` serves (started by "
            "`make run`): it signs a token per page load with the private key in "
            f"{KEY_FILE} of the portal's var/ folder.",
        )
        created["embed applications"] += 1
        created["embed keys"] += 1
    elif not app.keys.filter(kid=kid).exists():
        embed_key_add(
            app=app, by=owner, kid=kid, algorithm=EmbedKeyAlgorithm.EDDSA, public_key=public_pem
        )
        created["embed keys"] += 1
        # The demo's earlier keys: their private keys are gone with the file they were in.
        for old in app.keys.filter(kid__startswith=KID_PREFIX).exclude(kid=kid):
            embed_key_remove(key=old, by=owner)
    return created


def demo_host() -> DemoHost:
    """What the host page signs with, or DemoHostUnavailable saying what to run."""
    embed = _demo_embed()
    if embed is None:
        raise DemoHostUnavailable(
            "The demo has no embed yet: run `python manage.py seed_demo` (make run does)."
        )
    path = key_path()
    if not path.exists():
        raise DemoHostUnavailable(
            f"The demo host's private key ({path}) is missing: run `python manage.py "
            "seed_demo` to write a new one and register it."
        )
    private_pem = path.read_text()
    kid, _ = _public_key(private_pem)
    if not EmbedKey.objects.filter(kid=kid, app__embed=embed).exists():
        raise DemoHostUnavailable(
            f"The key in {path} is not registered for the demo embed: run `python manage.py "
            "seed_demo` to register it."
        )
    return DemoHost(
        embed_id=str(embed.pk),
        title=embed.title,
        kid=kid,
        private_key=private_pem,
        key_file=str(path),
    )


def demo_embed_origins_set(*, port: int) -> bool:
    """Allow the host page on `port` to show the demo embed (its earlier local ports no
    longer): the portal's port may change between runs. True when the origins changed."""
    embed = _demo_embed()
    if embed is None:
        return False
    wanted = host_origins(port)
    kept = [
        origin
        for origin in embed.allowed_origins
        if urlsplit(origin).scheme != "http" or urlsplit(origin).hostname not in HOST_NAMES
    ]
    origins = kept + [origin_normalise(origin) for origin in wanted]
    if origins == embed.allowed_origins:
        return False
    # Set directly: the embeds' services change no allowed origins after creation (yet).
    Embed.objects.filter(pk=embed.pk).update(allowed_origins=origins, updated_at=timezone.now())
    return True
