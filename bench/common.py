"""What every benchmark shares: its own PostgreSQL database (dropped and recreated, so its
name must contain "bench"), and writing its figures into a section of RESULTS.md."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"


def database_config(script: str) -> dict:
    """The bench database from DATABASE_URL; exits unless it is PostgreSQL and its name
    contains "bench" (the benchmark drops it)."""
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit(f"{script} runs on PostgreSQL only: set DATABASE_URL=postgres://...")
    config = dj_database_url.parse(url)
    if "bench" not in config["NAME"]:
        sys.exit(
            f"Refusing to use database {config['NAME']!r}: the benchmark drops and "
            "recreates its database, so its name must contain 'bench' (e.g. portal_bench)."
        )
    return config


def connect(config: dict, dbname: str | None = None, **kwargs):
    """A psycopg connection to the bench database (or `dbname`)."""
    import psycopg

    return psycopg.connect(
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        dbname=dbname or config["NAME"],
        **kwargs,
    )


def admin_connection(config: dict):
    return connect(config, "postgres", autocommit=True)


def recreate_database(config: dict) -> None:
    with admin_connection(config) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{config["NAME"]}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{config["NAME"]}"')


def drop_database(config: dict) -> None:
    from django.db import connections

    connections.close_all()
    with admin_connection(config) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{config["NAME"]}" WITH (FORCE)')


def pg_version(config: dict) -> str:
    with connect(config) as conn:
        return conn.execute("SHOW server_version").fetchone()[0].split()[0]


def write_results(section: str, body: str) -> None:
    """Replace (or append) `section` of RESULTS.md with `body`."""
    text = f"{section}\n\n{body}\n"
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if section in existing:
        before, _, rest = existing.partition(section)
        following = rest.find("\n## ")
        after = rest[following + 1 :] if following != -1 else ""
        existing = before + text + ("\n" + after if after else "")
    else:
        existing = existing.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(existing)
    print(f"\nWrote the figures to {RESULTS.relative_to(ROOT)}")


def free_port() -> int:
    """A TCP port free on this machine's loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> list[int]:
    """The ids of the processes whose parent is `pid` (gunicorn's or Celery's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found
