"""Fixtures of the demo tests."""

import time
from datetime import UTC, datetime

import pytest
from django.db import connection


@pytest.fixture
def demo_settings(settings, tmp_path):
    """The demo's DuckDB warehouse in a temporary file and, on PostgreSQL, its warehouse
    schema dropped afterwards. The demo's logins are real; a fast hasher keeps two
    seedings quick."""
    settings.DEMO_DUCKDB_PATH = tmp_path / "warehouse.duckdb"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield settings
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA IF EXISTS warehouse CASCADE")


@pytest.fixture
def one_hour():
    """The seeder's data is as of the current hour: two seeds either side of an hour's turn
    rightly rebuild. A test seeding twice that starts in the last two minutes of an hour
    waits for the next one (it takes under a minute)."""
    now = datetime.now(UTC)
    left = 3600 - (now.minute * 60 + now.second)
    if left < 120:
        time.sleep(left + 1)
