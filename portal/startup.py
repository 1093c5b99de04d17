"""What a production process checks before it starts serving."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

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
