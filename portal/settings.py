"""Portal settings. Everything comes from the environment (see DESIGN.md, "Settings").

Defaults make `make run` work on a bare machine: SQLite, an embedded (filesystem) Celery
broker and a local-memory cache, all under `var/`. Production refuses to start without a
real SECRET_KEY.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
import dj_email_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# Django's debug pages (the 404 listing every route, the 500 traceback) only when asked
# for: under DEBUG alone the portal's own 404 and 500 pages show (portal.error_pages).
DEBUG_PAGES = DEBUG and env_bool("DEBUG_PAGES", False)

# Without SECRET_KEY and DEBUG=0 the settings still load, so that offline commands
# (makemigrations, collectstatic...) work; what serves or signs refuses to start:
# the WSGI application, Celery workers and beat, and `check --deploy` (portal/startup.py).
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.postgres",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "django_prometheus",
    "portal",
    "products",
    "sharing",
]

MIDDLEWARE = [
    "portal.proxy.TrustedProxyMiddleware",  # the client's address behind a load balancer
    "portal.ops.OpsEndpointsMiddleware",  # /healthz, /readyz, /metrics: before all else
    "portal.input_guard.InputGuardMiddleware",  # NUL bytes, over-long URLs: 400 before views
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "portal.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.core.task_queue.TaskQueueStatusMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    "portal.error_pages.FriendlyErrorPagesMiddleware",  # our 404/500 pages under DEBUG too
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.core.task_queue.task_queue",
            ],
        },
    },
]

# --- metadata database ---------------------------------------------------------------
# Connections are bounded per process, however many threads it runs: on PostgreSQL one
# psycopg pool per process (Django's built-in pool) of at most DB_POOL_MAX_SIZE
# connections, each taken for a request (or task) and given back at its end. Persistent
# per-thread connections (CONN_MAX_AGE > 0) were never closed when a thread ended: the
# threaded dev server of `make run` starts one per request and held one idle connection
# each until PostgreSQL refused clients. DB_POOL_MAX_SIZE=0: no pool, one connection per
# request. docs/deploy.md ("Database connections") gives the bound of a deployment.
DB_POOL_MAX_SIZE = int(os.environ.get("DB_POOL_MAX_SIZE") or 4)
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}",
        conn_max_age=0,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file in embedded mode: wait for locks. A
    # transaction takes the write lock when it begins (IMMEDIATE), so it waits its turn:
    # a deferred one that reads, then writes, fails at once with "database is locked"
    # (beat lost schedule entries that way at start-up, among the event consumers' writes).
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=30, transaction_mode="IMMEDIATE")
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DB_POOL_MAX_SIZE:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(int(os.environ.get("DB_POOL_MIN_SIZE") or 1), DB_POOL_MAX_SIZE),
        "max_size": DB_POOL_MAX_SIZE,
        # Seconds a request waits for a free connection before failing; also how long a
        # request waits while PostgreSQL is down (the pool keeps trying to reconnect).
        "timeout": float(os.environ.get("DB_POOL_TIMEOUT") or 5),
        # Connections above min_size idle this long are closed.
        "max_idle": float(os.environ.get("DB_POOL_MAX_IDLE") or 60),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache -----------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # django-redis, so that a Redis outage degrades the cache to misses (pages still
    # answer, a little slower) instead of failing every request that touches it.
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "portal",
            "OPTIONS": {
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    # Sessions are read from the shared cache, written through to the database: a page
    # view skips a database query, and a Redis outage falls back to the database. (Not
    # with a per-process cache: a session ended in one process would live on in another.)
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Catalog searches keep their window of matches and facet counts this long in the cache,
# within the catalog's generation (any change of a product's text, tags or lifecycle
# starts a new one). Only with a cache every process shares: a change made by one
# process must reach every other's searches.
SEARCH_CACHE_SECONDS = int(os.environ.get("SEARCH_CACHE_SECONDS") or (60 if REDIS_URL else 0))

# --- auth ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- static and media files ----------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", str(VAR_DIR / "static")))  # collectstatic's
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# plotly.js is a partial bundle under static/vendor/plotly/ with its version in its name
# (portal.core.plotly_assets): browsers keep it for good instead of asking again each minute.
WHITENOISE_IMMUTABLE_FILE_TEST = r"^/static/vendor/plotly/plotly-basic-[0-9.]+\.min\.js$"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedStaticFilesStorage"
        )
    },
}
# Production serves what collectstatic wrote (each file with its gzip and brotli copies);
# WhiteNoise's finders would serve the sources instead, uncompressed. They serve in
# development, and in production only until the first collectstatic (a page still styled
# rather than bare if a release forgot it).
WHITENOISE_USE_FINDERS = DEBUG or not any(STATIC_ROOT.iterdir())
WHITENOISE_AUTOREFRESH = DEBUG

# --- mail ------------------------------------------------------------------------------
_email = dj_email_url.parse(os.environ.get("EMAIL_URL", "console://"))
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
DEFAULT_FROM_EMAIL = _email.get("DEFAULT_FROM_EMAIL") or "portal@localhost"
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The portal's public address, for links in emails and webhooks (incident notifications):
# PORTAL_URL, the same address notebook clients are given.
PORTAL_SITE_URL = (
    os.environ.get("PORTAL_URL", "") or f"http://localhost:{os.environ.get('PORT', '8000')}"
)

# --- security --------------------------------------------------------------------------
# Production defaults when DEBUG=0, each overridable from the environment (docs/deploy.md).
SECURE = not DEBUG
# Behind a load balancer that terminates TLS and sets X-Forwarded-Proto (and strips it
# from clients): SECURE_PROXY_SSL_HEADER=1. Off by default: trusting the header without
# such a proxy lets any client claim HTTPS.
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", SECURE)
# /healthz, /readyz and /metrics are answered before SecurityMiddleware (portal.ops).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", SECURE)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", SECURE)
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS") or (31_536_000 if SECURE else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", SECURE)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# --- REST API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.tokens.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [  # JSON bounded in size and depth: portal.core.safe_json
        "portal.api.parsers.LimitedJSONParser",
        "portal.api.parsers.LimitedFormParser",
        "portal.api.parsers.LimitedMultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.PagePagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=10),
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_LIMIT_PER_USER": 20,
}
# Named tokens people create on /my/tokens/ live 7, 30 or 90 days, never longer than this
# (API_TOKEN_MAX_DAYS); a token from POST /api/v1/auth/token/ lives REST_KNOX's TOKEN_TTL.
KNOX_TOKEN_MODEL = "knox.AuthToken"  # named so migrations can refer to it (portal.ApiToken)
API_TOKEN_MAX_TTL = timedelta(days=int(os.environ.get("API_TOKEN_MAX_DAYS") or 90))
SPECTACULAR_SETTINGS = {
    "TITLE": "Data-product portal API",
    "DESCRIPTION": "Catalog, trust, access and serving of data products.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets come from our own static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery ----------------------------------------------------------------------------
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Embedded broker: messages are files under var/broker, shared by web, worker, beat.
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # A broker that does not answer fails a send within seconds (the run stays queued).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 2}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# How often the reapers of the schedule below look for lost or unsent work (a test of a
# broker outage shortens it; the default suits production).
REAPER_INTERVAL = timedelta(seconds=int(os.environ.get("REAPER_INTERVAL_SECONDS", "60")))
# Every periodic task, declared once here; django-celery-beat's DatabaseScheduler syncs
# these entries into its tables by name at start-up (no duplicates), where admins can
# see and pause them.
CELERY_BEAT_SCHEDULE = {
    # Background work requested while the broker was down (portal.core.task_queue's outbox).
    "queued-tasks-reaper": {
        "task": "portal.tasks.queued_tasks_reaper",
        "schedule": REAPER_INTERVAL,
    },
    "schema-refresh-reaper": {
        "task": "products.tasks.schema_refresh_reaper",
        "schedule": REAPER_INTERVAL,
    },
    "check-run-reaper": {
        "task": "products.tasks.check_run_reaper",
        "schedule": REAPER_INTERVAL,
    },
    "monitors-observe-all": {
        "task": "products.tasks.monitors_observe_all",
        "schedule": timedelta(minutes=15),
    },
    "slos-evaluate-all": {
        "task": "products.tasks.slos_evaluate_all",
        "schedule": timedelta(minutes=15),
    },
    "trust-scores-recompute-all": {
        "task": "products.tasks.trust_scores_recompute_all",
        "schedule": timedelta(days=1),
    },
    "access-review-daily": {
        "task": "sharing.tasks.access_review_daily",
        "schedule": timedelta(days=1),
    },
    # A grant's end is announced (portal.access.expired) within minutes of its expiry.
    "grants-expire": {
        "task": "sharing.tasks.grants_expire",
        "schedule": timedelta(minutes=5),
    },
    "retirement-flag-unused": {
        "task": "products.tasks.retirement_flag_unused_daily",
        "schedule": timedelta(days=1),
    },
    # Hourly, so that a step is taken within the hour its notice or grace period ends.
    "retirement-advance": {
        "task": "products.tasks.retirement_advance_due",
        "schedule": timedelta(hours=1),
    },
    # The usage dashboard ranks these summaries instead of aggregating the audit live.
    "usage-summaries-refresh": {
        "task": "products.tasks.usage_summaries_refresh_hourly",
        "schedule": timedelta(hours=1),
    },
}
# Retirement: a published product with no data read for this many days is flagged to its
# owners; a deprecated one is retired this many days after its notice period ended.
RETIREMENT_UNUSED_DAYS = int(os.environ.get("RETIREMENT_UNUSED_DAYS", "90"))
RETIREMENT_GRACE_DAYS = int(os.environ.get("RETIREMENT_GRACE_DAYS", "30"))
# A monitor observation records a trust score only when an incident changed or the
# product's latest score is older than this (monitors run every few minutes).
TRUST_SCORE_OBSERVATION_INTERVAL = timedelta(hours=1)
# A run still "running" after this long lost its worker; the reaper fails it.
SCHEMA_REFRESH_TIMEOUT = timedelta(minutes=10)
CHECK_RUN_TIMEOUT = timedelta(minutes=20)
# A run still queued after this long, with nothing waiting in the queue, lost its message
# (the broker was down when it was queued): the reapers send it again; so is an outbox
# row (portal.models.QueuedTask) still unsent after this long, once the broker answers.
TASK_REDISPATCH_AFTER = timedelta(seconds=int(os.environ.get("TASK_REDISPATCH_SECONDS", "60")))

# --- events (portal.core.events): the outbox and who follows it ------------------------
# Tasks woken after each commit that wrote events; each reads the outbox after its own
# cursor (portal.models.EventCursor) and also runs periodically to catch up.
EVENT_CONSUMER_TASKS: list[str] = []
# A consumer already woken is not woken again until it starts (portal.core.events): the
# mark lives this many seconds in the shared cache. 0 (the default without REDIS_URL, where
# the cache is per process): every commit wakes every consumer.
EVENTS_WAKE_COALESCE_SECONDS = int(
    os.environ.get("EVENTS_WAKE_COALESCE_SECONDS") or (10 if REDIS_URL else 0)
)
# The NATS server (JetStream) events are published to, as portal.events.<type>; `make run`
# starts its own when none is given. Empty: events are not published to NATS.
NATS_URL = os.environ.get("NATS_URL", "")
# Webhook targets on loopback or private networks are refused unless this is set.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS")
# An OpenLineage HTTP endpoint (e.g. Marquez's /api/v1/lineage); empty: none.
OPENLINEAGE_URL = os.environ.get("OPENLINEAGE_URL", "")

# --- OpenLineage (sharing.lineage, docs/openlineage.md) ---------------------------------
# The environment variable holding the endpoint's API key, sent as a Bearer token (the
# key itself stays out of settings, pages and logs); unset or empty: no Authorization.
OPENLINEAGE_API_KEY_ENV = os.environ.get("OPENLINEAGE_API_KEY_ENV", "OPENLINEAGE_API_KEY")
# The namespace of the portal's jobs and datasets in the lineage graph.
OPENLINEAGE_NAMESPACE = os.environ.get("OPENLINEAGE_NAMESPACE", "portal")
# The run events' `producer` URI: the software that produced them.
OPENLINEAGE_PRODUCER = os.environ.get("OPENLINEAGE_PRODUCER", "") or PORTAL_SITE_URL
OPENLINEAGE_TIMEOUT_SECONDS = float(os.environ.get("OPENLINEAGE_TIMEOUT_SECONDS", "10"))
EVENT_CONSUMER_TASKS.append("sharing.lineage.tasks.openlineage_send")
CELERY_BEAT_SCHEDULE["openlineage-send"] = {
    "task": "sharing.lineage.tasks.openlineage_send",
    "schedule": timedelta(seconds=10),
}

# --- stream ports (sharing/streams): governed reads of NATS JetStream streams -----------
# Messages fetched (and served after one access decision) at a time.
STREAM_BATCH_MESSAGES = int(os.environ.get("STREAM_BATCH_MESSAGES", "500"))
# A following subscription with nothing to send sends a keep-alive this often, and decides
# access again then (a revoked grant is cut off even on a quiet stream).
STREAM_KEEPALIVE_SECONDS = float(os.environ.get("STREAM_KEEPALIVE_SECONDS", "15"))
# A subscription ends after this long (the client resumes from its last sequence, SSE's
# Last-Event-ID): a long-lived read holds one web worker thread.
STREAM_MAX_SECONDS = int(os.environ.get("STREAM_MAX_SECONDS", "3600"))
# The monitors emit portal.stream.lag_breached when a stream port's last message is older
# than this (its producer stopped): once per stall.
STREAM_LAG_LIMIT_SECONDS = int(os.environ.get("STREAM_LAG_LIMIT_SECONDS", "300"))
# The NATS publisher (sharing.events.nats): JetStream stream and subject prefix of events,
# and how long JetStream remembers a message id to drop a re-sent duplicate.
EVENT_CONSUMER_TASKS.append("sharing.events.tasks.events_publish_nats")
NATS_EVENTS_STREAM = os.environ.get("NATS_EVENTS_STREAM", "PORTAL_EVENTS")
NATS_EVENTS_SUBJECT_PREFIX = os.environ.get("NATS_EVENTS_SUBJECT_PREFIX", "portal.events")
NATS_DUPLICATE_WINDOW = timedelta(minutes=int(os.environ.get("NATS_DUPLICATE_MINUTES", "60")))
CELERY_BEAT_SCHEDULE["events-publish-nats"] = {
    "task": "sharing.events.tasks.events_publish_nats",
    "schedule": timedelta(seconds=5),  # catches up on wake-ups lost while the broker was down
}
# Server-Sent Events (sharing.events.sse; docs/deploy.md, "Server-Sent Events"): each open
# stream holds one web thread, so a process serves at most SSE_MAX_CONNECTIONS streams and
# answers 503 + Retry-After beyond. Default: under gunicorn half its threads per worker
# (GUNICORN_THREADS, as deploy/gunicorn.conf.py reads it), so pages keep the other half;
# under runserver (`make run`, tests' live server), whose threads are not bounded, 64.
_UNDER_GUNICORN = "gunicorn.app.base" in sys.modules
SSE_MAX_CONNECTIONS = int(
    os.environ.get("SSE_MAX_CONNECTIONS")
    or (max(1, int(os.environ.get("GUNICORN_THREADS") or 4) // 2) if _UNDER_GUNICORN else 64)
)
SSE_MAX_SECONDS = int(os.environ.get("SSE_MAX_SECONDS") or 300)  # then the client resumes
# A keep-alive comment when quiet. Under runserver, which hides the client's socket, a closed
# tab is found only by the second keep-alive that cannot be written: every 2 s there, so its
# slot comes back within seconds; gunicorn shows the socket, looked at every probe interval.
SSE_KEEPALIVE_SECONDS = float(
    os.environ.get("SSE_KEEPALIVE_SECONDS") or (15 if _UNDER_GUNICORN else 2)
)
SSE_CLIENT_PROBE_SECONDS = float(os.environ.get("SSE_CLIENT_PROBE_SECONDS") or 1)
SSE_POLL_SECONDS = float(os.environ.get("SSE_POLL_SECONDS") or 0.25)  # newest-id watcher
SSE_RETRY_SECONDS = 3  # the `retry:` hint: how soon a client reconnects
SSE_RETRY_AFTER_SECONDS = 30  # Retry-After of the 503 when this process's streams are full

# --- the demo warehouse (embedded mode) ------------------------------------------------
DEMO_DUCKDB_PATH = Path(os.environ.get("DEMO_DUCKDB_PATH") or VAR_DIR / "warehouse.duckdb")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- share links -----------------------------------------------------------------------
# Requests to /s/<token>/ per client address (Redis fixed window): "60/min", "1000/hour".
SHARE_LINK_RATE_LIMIT = os.environ.get("SHARE_LINK_RATE_LIMIT", "60/min")
# --- federated SQL queries (sharing.federation, docs/query.md) ---------------------------
# A query's time on the sources and in the portal's DuckDB, then it is cancelled there.
QUERY_TIMEOUT_SECONDS = float(os.environ.get("QUERY_TIMEOUT_SECONDS", "60"))
# Rows an answer holds at most (more: it says it was truncated); a request may ask fewer.
QUERY_MAX_ROWS = int(os.environ.get("QUERY_MAX_ROWS", "100000"))
# PostgreSQL's estimated cost (EXPLAIN) above which a query is refused before it runs.
QUERY_COST_BUDGET = float(os.environ.get("QUERY_COST_BUDGET", "50000000"))
# Queries running at once on one source, across the portal's processes (Redis).
QUERY_SOURCE_CONCURRENCY = int(os.environ.get("QUERY_SOURCE_CONCURRENCY", "4"))
# Queries one person may start (HTTP, notebook and the PostgreSQL wire endpoint together).
QUERY_RATE_LIMIT = os.environ.get("QUERY_RATE_LIMIT", "120/min")
# The memory of the DuckDB that joins products of several sources (it spills beyond).
QUERY_DUCKDB_MEMORY_LIMIT = os.environ.get("QUERY_DUCKDB_MEMORY_LIMIT", "384MB")
# Answers are kept this long for the same SQL over the same data versions (0: never).
QUERY_CACHE_SECONDS = int(os.environ.get("QUERY_CACHE_SECONDS", "60"))
# The PostgreSQL wire-protocol endpoint (`manage.py sql_server`).
PORTAL_SQL_HOST = os.environ.get("PORTAL_SQL_HOST", "127.0.0.1")
PORTAL_SQL_PORT = int(os.environ.get("PORTAL_SQL_PORT", "15432"))
# --- embedded analytics (sharing.embeds, docs/embeds.md) ------------------------------------
# The `aud` every embed token must carry: what host applications sign for.
EMBED_TOKEN_AUDIENCE = os.environ.get("EMBED_TOKEN_AUDIENCE", "data-portal-embed")
# A token lives at most this long (its `exp` from its `iat`, or from now).
EMBED_TOKEN_MAX_SECONDS = int(os.environ.get("EMBED_TOKEN_MAX_SECONDS", "600"))
# Clocks of host applications and the portal may differ by this much.
EMBED_CLOCK_LEEWAY_SECONDS = int(os.environ.get("EMBED_CLOCK_LEEWAY_SECONDS", "30"))
# Data calls per embed and client address (Redis fixed window).
EMBED_RATE_LIMIT = os.environ.get("EMBED_RATE_LIMIT", "600/min")
# --- scheduled exports (sharing.exports.services.runs) --------------------------------------
# A run's worker records a heartbeat this often; a run without one for the timeout lost
# its worker: the reaper queues it again (up to EXPORT_MAX_ATTEMPTS attempts) or fails it.
EXPORT_HEARTBEAT_SECONDS = float(os.environ.get("EXPORT_HEARTBEAT_SECONDS", "5"))
EXPORT_HEARTBEAT_TIMEOUT = timedelta(
    seconds=int(os.environ.get("EXPORT_HEARTBEAT_TIMEOUT_SECONDS", "120"))
)
EXPORT_MAX_ATTEMPTS = int(os.environ.get("EXPORT_MAX_ATTEMPTS", "3"))
EXPORT_QUEUED_TIMEOUT = timedelta(hours=1)
EXPORT_TIME_LIMIT_SECONDS = int(os.environ.get("EXPORT_TIME_LIMIT_SECONDS", str(4 * 3600)))
# Temporary files of exports when the default storage is not local (S3-compatible): the
# file is written here, then uploaded whole.
EXPORT_TEMP_DIR = Path(os.environ.get("EXPORT_TEMP_DIR", str(VAR_DIR / "export-tmp")))
CELERY_BEAT_SCHEDULE["export-runs-reaper"] = {
    "task": "sharing.export_tasks.export_runs_reaper",
    "schedule": timedelta(minutes=1),
}
CELERY_BEAT_SCHEDULE["export-runs-pruner"] = {
    "task": "sharing.export_tasks.export_runs_pruner",
    "schedule": timedelta(hours=1),
}

# --- syncs (reverse ETL, sharing.syncs.services.runs) ------------------------------------
# A running sync's worker beats this often; a run silent for the timeout lost its worker:
# the reaper queues the same run again (same idempotency keys, up to SYNC_MAX_ATTEMPTS).
# A sync destination's secret (`secret_env`) must be an environment variable whose name
# starts with this, so that nobody registering a destination can have the portal send
# its own secrets (SECRET_KEY, DATABASE_URL...) to their server.
SYNC_SECRET_ENV_PREFIX = os.environ.get("SYNC_SECRET_ENV_PREFIX", "SYNC_SECRET_")
SYNC_HEARTBEAT_SECONDS = float(os.environ.get("SYNC_HEARTBEAT_SECONDS", "5"))
SYNC_HEARTBEAT_TIMEOUT = timedelta(
    seconds=int(os.environ.get("SYNC_HEARTBEAT_TIMEOUT_SECONDS", "120"))
)
SYNC_MAX_ATTEMPTS = int(os.environ.get("SYNC_MAX_ATTEMPTS", "5"))
SYNC_TIME_LIMIT_SECONDS = int(os.environ.get("SYNC_TIME_LIMIT_SECONDS", str(4 * 3600)))
# A run plans against the sync's state held in the worker (sorted md5 words, 22 bytes
# plus the key per acknowledged record) up to this size; a larger state is diffed in the
# portal's PostgreSQL instead (docs/syncs.md, Planning).
SYNC_PLAN_MEMORY_MB = int(os.environ.get("SYNC_PLAN_MEMORY_MB", "128"))
CELERY_BEAT_SCHEDULE["sync-runs-reaper"] = {
    "task": "sharing.syncs.tasks.sync_runs_reaper",
    "schedule": timedelta(minutes=1),
}

# --- uploads to file ports (docs/uploads.md) ----------------------------------------------
# One upload at most (413 above); the file streams to a temporary file, never into memory.
PORT_UPLOAD_MAX_BYTES = int(os.environ.get("PORT_UPLOAD_MAX_BYTES", str(1_000_000_000)))
# Columns a port may have (uploads and schema refreshes refuse wider files and tables).
PORT_MAX_COLUMNS = int(os.environ.get("PORT_MAX_COLUMNS", "1000"))
# What a Parquet footer may declare: uncompressed bytes, and how many times larger than
# the file itself once above the floor (a "zip bomb").
PORT_UPLOAD_MAX_UNCOMPRESSED_BYTES = int(
    os.environ.get("PORT_UPLOAD_MAX_UNCOMPRESSED_BYTES", str(10_000_000_000))
)
PORT_UPLOAD_MAX_EXPANSION = float(os.environ.get("PORT_UPLOAD_MAX_EXPANSION", "100"))
PORT_UPLOAD_EXPANSION_FLOOR_BYTES = int(
    os.environ.get("PORT_UPLOAD_EXPANSION_FLOOR_BYTES", str(1_000_000_000))
)
# The child process that checks an upload: its address-space cap and its time limit.
PORT_UPLOAD_CHECK_MEMORY_BYTES = int(
    os.environ.get("PORT_UPLOAD_CHECK_MEMORY_BYTES", str(1_000_000_000))
)
PORT_UPLOAD_CHECK_TIMEOUT_SECONDS = int(os.environ.get("PORT_UPLOAD_CHECK_TIMEOUT_SECONDS", "300"))
# Two fields named `format` take different choice sets (uploads: file formats; share links
# and exports: data formats): one name each in the API schema.
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update(
    {
        "FileFormatEnum": "products.choices.FileFormat",
        "FormatEnum": "sharing.choices.DataFormat",
        "ExportFormatEnum": "sharing.exports.api.serializers.FORMAT_CHOICES",
    }
)
# --- hardening: CSP, sign-in limits, proxies, logs, metrics, storage (docs/deploy.md) ---
from csp.constants import NONE, SELF  # noqa: E402

# Only our own scripts and styles, in every environment (DEBUG too, so that pages whose
# code breaks the policy fail their tests early). plotly.js keeps to it through the
# stylesheet portal.templatetags.portal_assets.plotly_assets links (no <style> injected).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    },
}
if os.environ.get("CSP_REPORT_URI"):
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [os.environ["CSP_REPORT_URI"]]

# Addresses (or networks) of the load balancers whose X-Forwarded-For is believed
# (portal.proxy); empty: REMOTE_ADDR is the client.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")

# Sign-in limits (portal.login_limits): per username and address, in Redis when set.
AUTHENTICATION_BACKENDS = [
    "portal.login_limits.LoginAttemptsBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.%s" % (
    "cache.AxesCacheHandler" if REDIS_URL else "database.AxesDatabaseHandler"
)
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT") or 5)
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_COOLOFF_MINUTES") or 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Password spraying: failures from one address across all usernames (portal.login_limits).
LOGIN_ADDRESS_FAILURE_LIMIT = int(os.environ.get("LOGIN_ADDRESS_FAILURE_LIMIT") or 20)
LOGIN_ADDRESS_WINDOW = timedelta(minutes=int(os.environ.get("LOGIN_ADDRESS_WINDOW_MINUTES") or 15))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "portal.login_limits.lockout_response"
# The client address is REMOTE_ADDR, which TrustedProxyMiddleware has already set from
# a trusted proxy's X-Forwarded-For; a header sent by the client itself counts for nothing.
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
AXES_VERBOSE = False
LOGGING["loggers"]["axes"] = {"level": "WARNING"}  # lockouts; not every sign-in

# Logs: LOG_FORMAT=json gives one JSON object per line on stdout (with request_id, and
# task_id/task_name in workers) and one line per request; the default stays plain.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
LOG_REQUESTS = env_bool("LOG_REQUESTS", LOG_FORMAT == "json")
LOGGING["filters"] = {"context": {"()": "portal.logs.ContextFilter"}}
LOGGING["handlers"]["console"]["filters"] = ["context"]
LOGGING["root"]["level"] = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING["formatters"]["json"] = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(process)d",
    "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    "datefmt": "%Y-%m-%dT%H:%M:%S%z",
}
if LOG_FORMAT == "json":
    LOGGING["handlers"]["console"]["formatter"] = "json"
    LOGGING["handlers"]["console"]["stream"] = "ext://sys.stdout"
    CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Prometheus (portal.metrics): /metrics for METRICS_TOKEN bearers or these networks.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")

# Files: the local file system (MEDIA_ROOT) by default; STORAGE_BACKEND=s3 stores them in
# an S3-compatible bucket through django-storages (docs/deploy.md lists what uses it).
if os.environ.get("STORAGE_BACKEND", "").strip().lower() == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["AWS_STORAGE_BUCKET_NAME"],
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "location": os.environ.get("AWS_S3_LOCATION", ""),
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": int(os.environ.get("AWS_QUERYSTRING_EXPIRE") or 300),
            "file_overwrite": False,
            "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE") or None,
            # Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment
            # (or the machine's role), read by boto3 itself; never in settings.
        },
    }

# --- webhooks (sharing.webhooks, docs/webhooks.md) ---------------------------------------
EVENT_CONSUMER_TASKS.append("sharing.webhooks.tasks.webhooks_fan_out")
# Signing secrets are stored encrypted with a key derived from this (SECRET_KEY when unset).
WEBHOOK_SECRET_KEY = os.environ.get("WEBHOOK_SECRET_KEY", "")
# One request's connect and read timeout.
WEBHOOKS_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOKS_TIMEOUT_SECONDS", "10"))
# Tries of one delivery before it is dead-lettered (~4 h with the defaults below).
WEBHOOKS_MAX_ATTEMPTS = int(os.environ.get("WEBHOOKS_MAX_ATTEMPTS", "10"))
# Back-off: base * 2^(tries - 1) seconds, at most the max, half of it random (jitter).
WEBHOOKS_RETRY_BASE_SECONDS = float(os.environ.get("WEBHOOKS_RETRY_BASE_SECONDS", "15"))
WEBHOOKS_RETRY_MAX_SECONDS = float(os.environ.get("WEBHOOKS_RETRY_MAX_SECONDS", "3600"))
# A subscription failing this long is paused and its owner told (a day).
WEBHOOKS_PAUSE_AFTER_SECONDS = float(os.environ.get("WEBHOOKS_PAUSE_AFTER_SECONDS", "86400"))
# A sender woken and not started yet is not woken again for this long (shared cache only).
WEBHOOKS_WAKE_COALESCE_SECONDS = int(
    os.environ.get("WEBHOOKS_WAKE_COALESCE_SECONDS") or (10 if REDIS_URL else 0)
)
WEBHOOKS_MAX_PER_OWNER = int(os.environ.get("WEBHOOKS_MAX_PER_OWNER", "25"))
CELERY_BEAT_SCHEDULE["webhooks-fan-out"] = {
    "task": "sharing.webhooks.tasks.webhooks_fan_out",
    "schedule": timedelta(seconds=5),
}
CELERY_BEAT_SCHEDULE["webhooks-due-wake"] = {
    "task": "sharing.webhooks.tasks.webhooks_due_wake",
    "schedule": timedelta(seconds=5),
}
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "WebhookStatusEnum": "sharing.models.webhooks.WebhookStatus",
        "WebhookDeliveryStatusEnum": "sharing.models.webhooks.DeliveryStatus",
        # Named now that webhooks' "status" fields made the generator's own name collide.
        "ShareLinkStatusEnum": "sharing.share_links.api.serializers.STATUSES",
    }
)
