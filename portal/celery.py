"""The Celery application, configured from Django settings (CELERY_ namespace)."""

import os
from pathlib import Path

from celery import Celery, signals

from portal.startup import MISSING_SECRET_KEY, secret_key_is_set

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Celery's Django fixup runs Django's system checks when a worker starts; their URL check
# imports every view (plotly, pyarrow, xlsxwriter...): ~50 MB a worker then holds idle
# for nothing. They run at release (`manage.py migrate` runs them) and in CI instead.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

ROOT = Path(__file__).resolve().parent.parent


def _has_tasks(package: str) -> bool:
    return (ROOT / package.replace(".", "/") / "tasks.py").exists()


app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
# One tasks.py per feature package; each task names itself explicitly
# (`name="products.tasks.check_run"`), so beat rows and messages in flight outlive moves.
TASK_PACKAGES = [
    "portal",
    "products.catalog",
    "products.contracts",
    "products.feedback",
    "products.retirement",
    "products.trust",
    "products.usage",
    "sharing.access",
    "sharing.events",
    "sharing.exports",
    "sharing.lineage",
    "sharing.syncs",
    "sharing.webhooks",
]
app.autodiscover_tasks(lambda: [p for p in TASK_PACKAGES if _has_tasks(p)])


@signals.import_modules.connect  # sent early by both workers and beat, before any DB use
def _refuse_without_secret_key(**kwargs) -> None:
    if not secret_key_is_set():
        # SystemExit, not an exception: Celery logs and ignores exceptions of signal handlers.
        raise SystemExit(MISSING_SECRET_KEY)


from portal import celery_ops  # noqa: E402,F401 - metrics, logs and request ids of tasks
