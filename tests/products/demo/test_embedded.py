"""What `make run` shows a newcomer with no environment set: the demo on SQLite and a
DuckDB warehouse. Every page of every demo product they may see, and the portal-wide pages, answer
200 for a reader and for an owner (the suite itself runs on PostgreSQL, where SQL that
SQLite refuses would pass unnoticed)."""

import os

from tests.processes import manage

PAGES = """
from django.contrib.auth import get_user_model
from django.test import Client
from products.models import DataProduct

TABS = ["", "quality/", "data/", "access/", "feedback/", "contract/", "exports/", "syncs/",
        "usage/"]
SITE = ["/", "/search/?q=orders", "/glossary/", "/metrics/", "/usage/", "/delta-shares/",
        "/notifications/", "/my/share-links/", "/my/feedback/", "/my/access/", "/domains/"]
failures, seen = [], 0
for username in ("analyst", "owner"):
    user = get_user_model().objects.get(username=username)
    client = Client()
    client.force_login(user)
    paths = list(SITE)
    for product in DataProduct.objects.visible_to(user).select_related("domain"):
        paths += [f"/products/{product.domain.slug}/{product.slug}/{tab}" for tab in TABS]
    for path in paths:
        seen += 1
        status = client.get(path).status_code
        if status != 200:
            failures.append(f"{username} {path} {status}")
print("PAGES", seen)
print("FAILURES", failures)
"""


def test_the_embedded_demo_serves_every_page(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "DEMO_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        # Tasks the seeder queues die with the process (no broker is shared with anything).
        "CELERY_BROKER_URL": "memory://",
        "DEBUG": "1",
        "ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
    }
    for command in (["migrate", "--noinput"], ["seed_demo"], ["shell", "-c", PAGES]):
        done = manage(*command, env=env)
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert int(lines["PAGES"]) > 100
    assert lines["FAILURES"] == "[]", lines["FAILURES"]
