from __future__ import annotations

import os
import subprocess
import sys

import pytest

from paris_avenir.config import DEV_SECRET_KEY, ConfigurationError, Settings
from tests.factories import TEST_FERNET_KEY


def test_dev_runs_with_the_development_secret() -> None:
    assert Settings(env="dev").secret_key == DEV_SECRET_KEY


@pytest.mark.parametrize("secret", ["", DEV_SECRET_KEY, "short-secret"])
def test_prod_refuses_a_missing_dev_or_short_secret(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="PARIS_AVENIR_SECRET_KEY"):
        Settings(env="prod", secret_key=secret)


def test_prod_accepts_a_real_secret() -> None:
    settings = Settings(env="prod", secret_key="k" * 48, encryption_keys=TEST_FERNET_KEY)
    assert settings.is_prod


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARIS_AVENIR_BASE_URL", "https://avenir.example.org")
    monkeypatch.setenv("PARIS_AVENIR_SMS_BACKEND", "http")
    settings = Settings()
    assert settings.base_url == "https://avenir.example.org"
    assert settings.sms_backend == "http"


def test_serve_in_prod_without_secret_stops_with_one_clear_line() -> None:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PARIS_AVENIR_")
    }
    environment["PARIS_AVENIR_ENV"] = "prod"
    completed = subprocess.run(
        [sys.executable, "-m", "paris_avenir.cli", "serve", "--port", "1"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    error_lines = completed.stderr.strip().splitlines()
    assert len(error_lines) == 1, completed.stderr
    assert "PARIS_AVENIR_SECRET_KEY" in error_lines[0]
    assert "Traceback" not in completed.stderr


def test_prod_refuses_to_run_without_its_own_encryption_keys() -> None:
    with pytest.raises(ConfigurationError, match="PARIS_AVENIR_ENCRYPTION_KEYS"):
        Settings(env="prod", secret_key="k" * 48)
