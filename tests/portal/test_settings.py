"""Production configuration: what serves (web, workers, beat) refuses to start without a
SECRET_KEY while offline commands still run, and `check --deploy` is clean with DEBUG=0
and a real key."""

import secrets
import subprocess
import sys
from pathlib import Path

from tests.portal.helpers import run_command


def _manage(*args: str, **env_overrides: str | None) -> subprocess.CompletedProcess:
    return run_command(sys.executable, "manage.py", *args, **env_overrides)


def test_the_web_application_refuses_to_start_without_secret_key():
    result = run_command(sys.executable, "-c", "import portal.wsgi", SECRET_KEY=None, DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_workers_and_beat_refuse_to_start_without_secret_key():
    for process in ("worker", "beat"):
        result = run_command(
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            process,
            "--pidfile=",
            SECRET_KEY=None,
            DEBUG="0",
            CELERY_BROKER_URL=None,
        )
        assert result.returncode != 0, process
        assert "SECRET_KEY is not set" in result.stderr, process


def test_check_deploy_fails_without_secret_key():
    result = _manage("check", "--deploy", SECRET_KEY=None, DEBUG="0")
    assert result.returncode != 0
    assert "portal.E001" in result.stderr and "SECRET_KEY is not set" in result.stderr


def test_offline_commands_work_without_secret_key():
    result = _manage("makemigrations", "--check", "--dry-run", SECRET_KEY=None, DEBUG="0")
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_check_deploy_is_clean_with_a_real_secret_key():
    result = _manage("check", "--deploy", SECRET_KEY=secrets.token_urlsafe(50), DEBUG="0")
    assert result.returncode == 0, result.stderr
    assert "WARNINGS" not in result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_debug_mode_runs_with_a_development_key():
    result = _manage("check", SECRET_KEY=None, DEBUG="1")
    assert result.returncode == 0, result.stderr


# --- production security settings (issue 8, part 5) ------------------------------------

SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
from django.core.files.storage import default_storage
default_storage._setup()
print(json.dumps({
    "ssl_redirect": s.SECURE_SSL_REDIRECT,
    "session_secure": s.SESSION_COOKIE_SECURE,
    "csrf_secure": s.CSRF_COOKIE_SECURE,
    "hsts": s.SECURE_HSTS_SECONDS,
    "hsts_subdomains": s.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "proxy_header": getattr(s, "SECURE_PROXY_SSL_HEADER", None),
    "csp": s.CONTENT_SECURITY_POLICY["DIRECTIVES"],
    "storage": type(default_storage._wrapped).__name__,
}))
"""


def _settings(**env: str | None) -> dict:
    import json

    result = run_command(
        sys.executable,
        "-c",
        SHOW_SETTINGS,
        DJANGO_SETTINGS_MODULE="portal.settings",
        **env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_defaults_are_secure():
    values = _settings(DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), SECURE_SSL_REDIRECT=None)
    assert values["ssl_redirect"] and values["session_secure"] and values["csrf_secure"]
    assert values["hsts"] >= 31_536_000 and values["hsts_subdomains"]
    # X-Forwarded-Proto is believed only when a proxy is declared.
    assert values["proxy_header"] is None
    assert values["csp"]["script-src"] == ["'self'"] and values["csp"]["style-src"] == ["'self'"]
    assert values["csp"]["object-src"] == ["'none'"]
    assert values["csp"]["frame-ancestors"] == ["'none'"]
    assert values["storage"] == "FileSystemStorage"


def test_security_settings_come_from_the_environment():
    values = _settings(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="600",
        SECURE_PROXY_SSL_HEADER="1",
    )
    assert values["ssl_redirect"] is False
    assert values["hsts"] == 600
    assert values["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_the_content_security_policy_applies_in_development_too():
    values = _settings(DEBUG="1", SECRET_KEY=None)
    assert values["csp"]["script-src"] == ["'self'"]
    assert values["session_secure"] is False and values["hsts"] == 0


def test_files_go_to_s3_compatible_storage_when_asked():
    values = _settings(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        STORAGE_BACKEND="s3",
        AWS_STORAGE_BUCKET_NAME="portal-files",
        AWS_S3_ENDPOINT_URL="http://127.0.0.1:9000",
    )
    assert values["storage"] == "S3Storage"


def test_check_deploy_is_clean_in_the_load_balanced_shape():
    result = _manage(
        "check",
        "--deploy",
        SECRET_KEY=secrets.token_urlsafe(50),
        DEBUG="0",
        SECURE_PROXY_SSL_HEADER="1",
        TRUSTED_PROXIES="10.0.0.10",
        LOG_FORMAT="json",
        METRICS_TOKEN="t" * 32,
        STORAGE_BACKEND="s3",
        AWS_STORAGE_BUCKET_NAME="portal-files",
    )
    assert result.returncode == 0, result.stderr
    assert "WARNINGS" not in result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def _production_python(script: str, **env: str | None) -> subprocess.CompletedProcess:
    """`python -c script` with the portal's settings as production has them (DEBUG=0, a
    real key), answering the test client's host."""
    return run_command(
        sys.executable,
        "-c",
        script,
        DJANGO_SETTINGS_MODULE="portal.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="testserver",
        **env,
    )


PRODUCTION_REQUESTS = """
import django, json
django.setup()
from django.test import Client
c = Client()
plain = c.get("/login/")
tls = c.get("/login/", HTTP_X_FORWARDED_PROTO="https")
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location", "")],
    "tls": tls.status_code,
    "hsts": tls.get("Strict-Transport-Security", ""),
    "csp": tls.get("Content-Security-Policy", ""),
    "cookie": tls.cookies["csrftoken"]["secure"] if "csrftoken" in tls.cookies else None,
}))
"""


def test_behind_the_load_balancer_pages_are_https_only_with_hsts():
    import json

    result = _production_python(
        PRODUCTION_REQUESTS, SECURE_PROXY_SSL_HEADER="1", SECURE_SSL_REDIRECT=None
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["plain"] == [301, "https://testserver/login/"]
    assert answer["tls"] == 200
    assert answer["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert "script-src 'self'" in answer["csp"]
    assert answer["cookie"] is True


def test_warm_up_loads_what_first_requests_would(settings):
    """portal.startup.warm_up (run by portal/wsgi.py, once in gunicorn's master): every
    portal template compiled, the URL tables built, the data libraries imported."""
    import sys

    from django.template import engines
    from django.urls import get_resolver

    from portal.startup import warm_up

    warm_up()
    loader = engines["django"].engine.template_loaders[0]
    directory = Path(settings.TEMPLATES[0]["DIRS"][0])
    names = {path.relative_to(directory).as_posix() for path in directory.rglob("*.html")}
    assert names and names <= set(loader.get_template_cache)
    assert get_resolver()._populated
    assert {"pandas", "adbc_driver_postgresql.dbapi"} <= set(sys.modules)


def test_a_web_process_starts_with_every_task_registered():
    """A page's first enqueue must not run Celery's task discovery inside a request: a
    second thread asking meanwhile found the registry half-filled (NotRegistered, a 500
    after the commit). portal/wsgi.py's warm-up registers them all."""
    probe = (
        "import portal.wsgi\n"
        "from portal.celery import app\n"
        "names = [n for n in app.tasks if not n.startswith('celery.')]\n"
        "print(len(names), 'products.tasks.feedback_notify' in names)\n"
    )
    result = run_command(sys.executable, "-c", probe, DEBUG="0")
    assert result.returncode == 0, result.stderr[-2000:]
    count, found = result.stdout.split()[-2:]
    assert found == "True" and int(count) > 20


STATIC_REQUEST = """
import django
django.setup()
from django.conf import settings
from django.test import Client
answer = Client().get(
    "/static/css/csp-safe.css", secure=True, headers={"accept-encoding": "gzip"}
)
print(answer.status_code, answer.get("Content-Encoding"), settings.WHITENOISE_USE_FINDERS)
"""


def _static_answer(static_root: Path) -> list[str]:
    result = _production_python(STATIC_REQUEST, STATIC_ROOT=str(static_root))
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_production_serves_the_collected_static_files_compressed(tmp_path):
    """Before collectstatic the sources are served (a forgotten release step still gives
    styled pages); after it, the collected files with their gzip copies."""
    static_root = tmp_path / "static"
    assert _static_answer(static_root) == ["200", "None", "True"]
    result = _manage(
        "collectstatic", "--noinput", "-v", "0", DEBUG="0", STATIC_ROOT=str(static_root)
    )
    assert result.returncode == 0, result.stderr
    assert (static_root / "css" / "csp-safe.css.gz").exists()
    assert _static_answer(static_root) == ["200", "gzip", "False"]
