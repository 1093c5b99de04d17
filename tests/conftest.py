"""Shared fixtures: real services (PostgreSQL, Redis, a Celery worker) and the people
every permission test needs.

Set REQUIRE_SERVICES=1 (CI does) and a test that would skip for a missing service fails
instead.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from django.test import override_settings

from portal.celery import app as celery_app
from products.choices import Classification, MembershipRole, SourceKind
from products.connectors.spark import spark_sessions_close
from products.connectors.spark_server import LocalSparkServer, SparkServerError, unavailable_reason
from sharing.access.services.grants import grant_create
from tests.factories import (
    ColumnFactory,
    DataSourceFactory,
    DomainFactory,
    MembershipFactory,
    OutputPortFactory,
    ProductFactory,
    UserFactory,
)
from tests.sharing.readers import SERVING_ROWS

ROOT = Path(__file__).resolve().parent.parent


@receiver(connection_created)
def _teardown_outwaits_workers(sender, connection, **kwargs):
    """A transactional test's teardown TRUNCATEs every table; a Celery worker of the
    session may be in a task that holds one of them (an outbox consumer woken by the
    test's last commit holds the events cursor and reads the events). PostgreSQL then
    aborts whichever side checks for a deadlock first: with this process waiting 10 s
    before it checks (the worker 1 s, the default), the worker's task is the one aborted
    (it logs and the next wake-up redoes it) and the teardown goes on, instead of leaving
    rows behind for the next test. The same holds for the live server's request threads
    (a browser's last request still in flight when the test ends): they keep the default,
    only the test's own (main) thread waits 10 s. Needs a superuser (CI's postgres);
    otherwise unchanged."""
    if connection.vendor != "postgresql":
        return
    if threading.current_thread() is not threading.main_thread():
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('is_superuser') = 'on'")
        if cursor.fetchone()[0]:
            cursor.execute("SET deadlock_timeout = '10s'")


def require_service(name: str, reason: str) -> None:
    """Skip for a missing service, or fail when REQUIRE_SERVICES=1."""
    message = f"{name} is not available: {reason}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (REQUIRE_SERVICES=1 turns this skip into a failure)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _http_test_settings(settings, media_root):
    # Tests speak plain HTTP to the test client and the live server.
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.MEDIA_ROOT = media_root
    # Each test starts with an empty cache (cached facet counts must not leak between
    # tests). With REDIS_URL this flushes that Redis database: point tests at a test one.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session", autouse=True)
def _source_connections_closed_at_end(django_db_setup):
    """The test process keeps ADBC connections to the sources it read (products.connectors
    .postgres), some in the test database: close them before it is dropped."""
    yield
    from products.connectors.postgres import adbc_templates_close

    adbc_templates_close()
    _stray_sessions_closed()


def _stray_sessions_closed() -> None:
    """Close what tests left connected to the test database (a live-server request thread
    still streaming to a client that went away holds its connection past the server's
    stop), so that it can be dropped; say which, so that the test can be mended."""
    if connection.vendor != "postgresql":
        return
    connection.close()
    connection.close_pool()  # the pool's idle connections are ours, not strays
    with psycopg.connect(_database_url_for_subprocess(), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid), application_name, state, left(query, 80)"
            " FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
    if rows:
        import warnings

        warnings.warn(
            f"closed {len(rows)} connection(s) tests left open on the test database: "
            + "; ".join(f"{app or '?'} ({state}): {query}" for _, app, state, query in rows),
            stacklevel=1,
        )


@pytest.fixture(scope="session")
def live_server(live_server_plain_http, live_server):
    """pytest-django's live server, speaking plain HTTP (every test that uses it)."""
    return live_server


@pytest.fixture(scope="session")
def live_server_plain_http():
    """The live server's middleware reads the security settings once, when the server
    starts, so the per-test override above (_http_test_settings) is too late for it."""
    with override_settings(
        SECURE_SSL_REDIRECT=False,
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
        SECURE_HSTS_SECONDS=0,
    ):
        yield


@pytest.fixture(scope="session")
def media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture
def postgres(db):
    """The metadata database must be PostgreSQL (full-text search, pushdown tests)."""
    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "DATABASE_URL does not point at PostgreSQL")
    return connection


def _redis_url() -> str:
    return os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or ""


@pytest.fixture(scope="session")
def redis_broker_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        require_service("Redis", "CELERY_BROKER_URL does not point at Redis")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        require_service("Redis", str(exc))
    return url


def _database_url_for_subprocess() -> str:
    """The URL of the *test* database, for processes started by tests."""
    cfg = connection.settings_dict
    if cfg["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{cfg['NAME']}"
    user = cfg.get("USER") or ""
    password = cfg.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return (
        f"postgres://{auth}{cfg.get('HOST') or 'localhost'}:{cfg.get('PORT') or 5432}/{cfg['NAME']}"
    )


def subprocess_env(media_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = _database_url_for_subprocess()
    env["MEDIA_ROOT"] = str(media_root)
    env.setdefault("SECRET_KEY", django_settings.SECRET_KEY)
    env["PYTHONUNBUFFERED"] = "1"
    # Every worker a test starts delivers webhooks alike (loopback receivers, quick
    # retries): the session's worker shares the queue and may take a webhook test's tasks.
    env.update(
        WEBHOOKS_ALLOW_PRIVATE_TARGETS="1",
        WEBHOOKS_RETRY_BASE_SECONDS="0.2",
        WEBHOOKS_RETRY_MAX_SECONDS="1",
        WEBHOOKS_MAX_ATTEMPTS="3",
        WEBHOOKS_TIMEOUT_SECONDS="5",
    )
    return env


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup, django_db_blocker, redis_broker_url, media_root, tmp_path_factory
):
    """A real Celery worker process consuming from Redis, on the test database.

    Tests using it must be `@pytest.mark.django_db(transaction=True)` so that the worker
    sees their rows."""
    from portal.celery import app

    if connection.vendor != "postgresql":
        # SQLite's test database lives in memory: a worker process cannot share it.
        require_service("PostgreSQL", "the worker process needs a shared test database")
    with django_db_blocker.unblock():
        env = subprocess_env(media_root)
    app.control.purge()
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [  # the worker as deploy/ starts it
            sys.executable,
            "-m",
            "portal.worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"test-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"The Celery worker exited early:\n{log_path.read_text()}")
        if app.control.ping(timeout=0.5):
            break
    else:
        process.terminate()
        pytest.fail(f"The Celery worker did not answer within 60 s:\n{log_path.read_text()}")
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.2, message: str = ""):
    """Poll until predicate() returns a truthy value (for work done by other processes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(message or f"condition not met within {timeout} s")


# --- people ---------------------------------------------------------------------------


@pytest.fixture
def domain(db):
    return DomainFactory(name="Sales", slug="sales")


@pytest.fixture
def owner(domain):
    user = UserFactory(username="owner")
    MembershipFactory(domain=domain, user=user, role=MembershipRole.OWNER)
    return user


@pytest.fixture
def steward(domain):
    user = UserFactory(username="steward")
    MembershipFactory(domain=domain, user=user, role=MembershipRole.STEWARD)
    return user


@pytest.fixture
def member(domain):
    user = UserFactory(username="member")
    MembershipFactory(domain=domain, user=user, role=MembershipRole.MEMBER)
    return user


@pytest.fixture
def outsider(db):
    """Signed in, but in no domain and not an admin."""
    return UserFactory(username="outsider")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


# --- fixtures shared by several features (each feature's own are in its conftest.py) ---


@pytest.fixture
def product(domain, owner):
    """The Orders product of the Sales domain, owned by `owner`. A feature or module that
    needs another product overrides this fixture (a richer product under the same name)."""
    return ProductFactory(domain=domain, name="Orders", slug="orders", owners=[owner])


@pytest.fixture
def grantee(product, owner):
    """A user granted the product by its owner (no narrowing)."""
    user = UserFactory(username="grantee")
    grant_create(product=product, by=owner, user=user, reason="reads the orders")
    return user


@pytest.fixture
def client_as(api_client):
    """The API client signed in as the given user (None: anonymous)."""

    def sign_in(user):
        api_client.force_authenticate(user)
        return api_client

    return sign_in


@pytest.fixture
def eager_tasks():
    """Tasks enqueued with .delay() run in this process (the callers' wiring, no broker)."""
    before = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = before


@pytest.fixture
def fast_passwords(settings):
    """A fast hasher: for tests that create many users (use with pytest.mark.usefixtures)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pg_info(connection) -> dict:
    """psycopg's connection arguments for the test database (a source in tests)."""
    cfg = connection.settings_dict
    info = dict(
        host=cfg["HOST"] or "localhost",
        port=int(cfg["PORT"] or 5432),
        dbname=cfg["NAME"],
        user=cfg["USER"] or None,
    )
    return {k: v for k, v in info.items() if v}


@pytest.fixture
def pg_product(postgres, domain):
    """The serving tests' orders (tests.sharing.readers.SERVING_ROWS) in a PostgreSQL
    table (committed: the source is another connection)."""
    info = pg_info(postgres)
    info.setdefault("user", None)
    with psycopg.connect(**{k: v for k, v in info.items() if v}, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS serving_test")
        conn.execute("DROP TABLE IF EXISTS serving_test.orders")
        conn.execute(
            "CREATE TABLE serving_test.orders (order_id bigint, country text,"
            " email text, amount double precision)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO serving_test.orders VALUES (%s, %s, %s, %s)",
                list(zip(*SERVING_ROWS.values(), strict=True)),
            )
    source = DataSourceFactory(
        kind=SourceKind.POSTGRESQL,
        path="",
        host=info["host"],
        port=info["port"],
        database=info["dbname"],
        username=info["user"] or "",
    )
    product = ProductFactory(domain=domain, name="PG orders", slug="pg-orders")
    port = OutputPortFactory(
        product=product,
        source=source,
        schema_name="serving_test",
        table_name="orders",
        slug="orders",
    )
    types = {"order_id": "bigint", "country": "text", "email": "text", "amount": "double precision"}
    for position, name in enumerate(SERVING_ROWS):
        ColumnFactory(
            port=port,
            name=name,
            position=position,
            data_type=types[name],  # the table's own types: filters are typed by them
            classification=Classification.CONFIDENTIAL
            if name == "email"
            else Classification.INTERNAL,
        )
    return product


# --- Apache Spark (Spark Connect) ------------------------------------------------------


@pytest.fixture(scope="session")
def spark_server(tmp_path_factory):
    """A local Spark Connect server (products.connectors.spark_server), started once per
    test session on 127.0.0.1, its warehouse in a temporary folder, stopped (with its JVM)
    at the end. Skips without Java or Spark (`make spark-server`), unless
    REQUIRE_SERVICES=1. Tests using it are marked `spark` (`-m "not spark"` leaves them)."""
    reason = unavailable_reason()
    if reason:
        require_service("Spark Connect", reason)
    server = LocalSparkServer(work_dir=tmp_path_factory.mktemp("spark"))
    try:
        server.start()
    except SparkServerError as exc:
        pytest.fail(str(exc))
    yield server
    spark_sessions_close()  # this process's sessions, before their server goes
    server.stop()
