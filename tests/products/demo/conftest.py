"""Fixtures of the demo tests."""

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
