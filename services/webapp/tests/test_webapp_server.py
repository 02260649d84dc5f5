"""Start-up of the pizza-webapp entry point: configuration errors exit 2 with one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kafka_common.config import ConfigError
from pizza_webapp import server

ENTRY = [sys.executable, "-c", "from pizza_webapp.server import main; main()"]


@pytest.mark.parametrize(
    "env, needle",
    [
        ({"STATUS_URL": "status:8001"}, "STATUS_URL"),
        ({"STATUS_URL": "ftp://status"}, "STATUS_URL"),
        ({"HTTP_PORT": "eighty"}, "HTTP_PORT"),
        ({"HTTP_PORT": "70000"}, "HTTP_PORT"),
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),
        ({"WEB_CONNECTIONS": "many"}, "WEB_CONNECTIONS"),
        ({"WEB_KAFKA_THREADS": "0"}, "WEB_KAFKA_THREADS"),
        ({"MAX_OPEN_ORDERS_PER_CUSTOMER": "-1"}, "MAX_OPEN_ORDERS_PER_CUSTOMER"),
        ({"MAX_OPEN_ORDERS_PER_CUSTOMER": "five"}, "MAX_OPEN_ORDERS_PER_CUSTOMER"),
        ({"SESSION_COOKIE_SECURE": "maybe"}, "SESSION_COOKIE_SECURE"),
        ({"KAFKA_SECURITY_PROTOCOL": "carrier_pigeon"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_NO_SUCH_PROPERTY": "1"}, "KAFKA_NO_SUCH_PROPERTY"),
        ({"KAFKA_CONFIG_FILE": "/nonexistent/kafka.ini"}, "KAFKA_CONFIG_FILE"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(env, needle, tmp_path):
    result = subprocess.run(
        ENTRY,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error: ")
    assert needle in lines[0]


def test_settings_defaults(monkeypatch):
    for name in (
        "HTTP_PORT",
        "WEB_CONCURRENCY",
        "STATUS_URL",
        "SECRET_KEY",
        "SESSION_COOKIE_SECURE",
        "MAX_OPEN_ORDERS_PER_CUSTOMER",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = server.load_settings()
    assert (settings.port, settings.workers, settings.status_url) == (8000, 2, "http://127.0.0.1:8011")
    assert settings.secret_key_generated and len(settings.secret_key) == 64
    assert settings.cookie_secure is False
    assert settings.max_open_orders == 5


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("HTTP_PORT", "8080")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "true")
    monkeypatch.setenv("STATUS_URL", "http://pizza-status:8081")
    monkeypatch.setenv("MAX_OPEN_ORDERS_PER_CUSTOMER", "0")
    settings = server.load_settings()
    assert (settings.port, settings.workers, settings.secret_key, settings.cookie_secure) == (8080, 3, "s3cret", True)
    assert settings.secret_key_generated is False
    assert settings.status_url == "http://pizza-status:8081"
    assert settings.max_open_orders == 0


def test_settings_reject_a_bad_status_url(monkeypatch):
    monkeypatch.setenv("STATUS_URL", "not a url")
    with pytest.raises(ConfigError, match="STATUS_URL"):
        server.load_settings()


def test_metrics_directory_is_wiped_at_start(tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "nested").mkdir()
    server._wipe_metrics_dir(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_metrics_directory_defaults_to_a_fresh_one(monkeypatch):
    # setenv first so that monkeypatch restores the original state, whatever main() sets.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "placeholder")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    path = server._prepare_metrics_dir()
    try:
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == path
        assert os.path.isdir(path) and os.listdir(path) == []
    finally:
        os.rmdir(path)
