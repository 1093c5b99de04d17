"""The portal's settings, served over plain HTTP: for benchmarks whose client cannot
send a proxy's `X-Forwarded-Proto: https` (the delta-sharing client, which fetches
the URLs the server gives it). Production settings otherwise (DEBUG=0)."""

from portal.settings import *  # noqa: F403

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
