import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

from portal.startup import require_secret_key, warm_up  # noqa: E402 - needs the settings loaded

require_secret_key()
warm_up()
