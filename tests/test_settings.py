"""Production configuration: what serves (web, workers, beat) refuses to start without a
SECRET_KEY while offline commands still run, and `check --deploy` is clean with DEBUG=0
and a real key."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, **env_overrides: str | None) -> subprocess.CompletedProcess:
    return _run(sys.executable, "manage.py", *args, **env_overrides)


def _run(*command: str, **env_overrides: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests for Playwright
    for name, value in env_overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        list(command),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_web_application_refuses_to_start_without_secret_key():
    result = _run(sys.executable, "-c", "import portal.wsgi", SECRET_KEY=None, DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_workers_and_beat_refuse_to_start_without_secret_key():
    for process in ("worker", "beat"):
        result = _run(
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
