"""What a production process checks before it starts serving."""

from pathlib import Path

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.template import engines
from django.urls import get_resolver

MISSING_SECRET_KEY = (
    "SECRET_KEY is not set. Set SECRET_KEY in the environment (production), "
    "or DEBUG=1 for a development key."
)


def secret_key_is_set() -> bool:
    try:
        return bool(settings.SECRET_KEY)
    except ImproperlyConfigured:  # Django refuses to read an empty SECRET_KEY
        return False


def require_secret_key() -> None:
    """Refuse to start without a real SECRET_KEY (sessions, CSRF and signed links use it)."""
    if not secret_key_is_set():
        raise ImproperlyConfigured(MISSING_SECRET_KEY)


@checks.register(checks.Tags.security, deploy=True)
def check_secret_key(app_configs, **kwargs):
    return [] if secret_key_is_set() else [checks.Error(MISSING_SECRET_KEY, id="portal.E001")]


def warm_up() -> None:
    """Load now what a process's first requests would otherwise load one by one: every
    view and the URL tables (the URLconf loads lazily), the libraries data reads import
    on first use, and the portal's templates, compiled. Under gunicorn's preload_app this
    runs once, in the master: every worker, and every one recycled after
    GUNICORN_MAX_REQUESTS, starts with it in memory it shares (a fresh worker's first data
    preview took 660 ms, then 60; its first API list 230 ms, then 35)."""

    import adbc_driver_postgresql.dbapi  # noqa: F401 - Arrow reads of PostgreSQL ports
    import pandas  # noqa: F401 - previews, XLSX

    def populate(resolver) -> None:
        # Building a resolver's tables for reverse() cost the first API list 100 ms.
        resolver.reverse_dict  # noqa: B018 - reading it builds it
        for _prefix, namespace in resolver.namespace_dict.values():
            populate(namespace)

    populate(get_resolver())
    # The task modules, so that a page's first enqueue finds its task registered.
    from portal.celery import app  # noqa: PLC0415 - portal.celery imports this module

    app.loader.import_default_modules()
    for engine in engines.all():
        for directory in settings.TEMPLATES[0]["DIRS"]:
            for path in sorted(Path(directory).rglob("*.html")):
                engine.get_template(path.relative_to(directory).as_posix())
