"""Production configuration: refuses to start without a SECRET_KEY, and `check --deploy`
is clean with DEBUG=0 and a real key."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, **env_overrides: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests for Playwright
    for name, value in env_overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_secret_key():
    result = _manage("check", SECRET_KEY=None, DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_check_deploy_is_clean_with_a_real_secret_key():
    result = _manage("check", "--deploy", SECRET_KEY=secrets.token_urlsafe(50), DEBUG="0")
    assert result.returncode == 0, result.stderr
    assert "WARNINGS" not in result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_debug_mode_runs_with_a_development_key():
    result = _manage("check", SECRET_KEY=None, DEBUG="1")
    assert result.returncode == 0, result.stderr
