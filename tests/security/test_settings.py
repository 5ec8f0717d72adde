"""Production settings: safe when DEBUG is off, a SECRET_KEY required, no secret committed."""

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "false",
    "HTTPS": "true",
    "SECRET_KEY": "x7Qp-2vN_s9LmK4tR8wZ1yB6cF3hJ0gD5eA-uV7iO2pS9nM4kL8jH1",
    "ALLOWED_HOSTS": "quartermaster.example.com",
}


def manage(*args: str, **environment: str) -> subprocess.CompletedProcess:
    # Not the test run's own settings, nor the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE.
    inherited = set(PRODUCTION) | {"DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {key: value for key, value in os.environ.items() if key not in inherited}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_values():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_secret_key_is_required_when_debug_is_off():
    # An empty SECRET_KEY in the environment wins over the one `make` wrote into .env.
    result = manage("check", **{**PRODUCTION, "SECRET_KEY": ""})

    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_production_settings_are_secure():
    code = (
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT,"
        " s.SECURE_HSTS_SECONDS >= 31536000, s.DEBUG, s.SESSION_COOKIE_HTTPONLY)"
    )
    result = manage("shell", "-c", code, **PRODUCTION)

    assert result.stdout.split()[-6:] == ["True", "True", "True", "True", "False", "True"]


def test_no_secret_is_committed():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout.split()

    assert ".env" not in tracked
    assert not [name for name in tracked if name.startswith(".pgdata/")]
    assignment = "SECRET_KEY" + "="  # spelt apart, so that this file does not match
    for name in tracked:
        path = PROJECT / name
        if path.suffix in {".py", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml"}:
            text = path.read_text(errors="ignore")
            assert assignment not in text, name
