import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

from portal.startup import require_secret_key  # noqa: E402 - needs the settings loaded

require_secret_key()

# Import every view now (the URLconf loads lazily, on a process's first request): under
# gunicorn's preload_app, once in the master for all workers.
from django.urls import resolve  # noqa: E402

resolve("/")
