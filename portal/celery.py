"""The Celery application, configured from Django settings (CELERY_ namespace)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Celery's Django fixup runs Django's system checks when a worker starts; their URL check
# imports every view (plotly, pyarrow, xlsxwriter...): ~50 MB a worker then holds idle
# for nothing. They run at release (`manage.py migrate` runs them) and in CI instead.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.import_modules.connect  # sent early by both workers and beat, before any DB use
def _refuse_without_secret_key(**kwargs) -> None:
    from portal.startup import MISSING_SECRET_KEY, secret_key_is_set

    if not secret_key_is_set():
        # SystemExit, not an exception: Celery logs and ignores exceptions of signal handlers.
        raise SystemExit(MISSING_SECRET_KEY)


from portal import celery_ops  # noqa: E402,F401 - metrics, logs and request ids of tasks
