"""Builds tests/products/catalog/search_catalog.py's catalog in the SQLite database named by
DATABASE_URL (migrated first) and prints its searches' results as JSON: the SQLite half of
test_search_ranking.py. Run as `python -m tests.products.catalog.sqlite_search`."""

import json
import os

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    # After django.setup(): the catalog module imports models.
    from django.core.management import call_command
    from django.db import connection

    from tests.products.catalog.search_catalog import build_catalog, run_searches

    assert connection.vendor == "sqlite", connection.vendor
    call_command("migrate", verbosity=0)
    reader, _ = build_catalog()
    print(json.dumps({"vendor": connection.vendor, "found": run_searches(reader)}))


if __name__ == "__main__":
    main()
