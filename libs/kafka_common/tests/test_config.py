"""Configuration: environment and KAFKA_CONFIG_FILE; bad configuration is one clear line and exit code 2."""

import subprocess

import pytest

from kafka_common.config import ConfigError, check_client_config, env_number, load_client_config
from shop_testing.process import resolve_command


def test_environment_maps_to_librdkafka_properties():
    config = load_client_config(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "b:9092",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISMS": "SCRAM-SHA-512",
            "KAFKA_HOME": "/opt/kafka",
            "OTHER": "x",
        }
    )
    assert config.properties == {
        "bootstrap.servers": "b:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
    }


def test_config_file_is_read_and_the_environment_wins(tmp_path):
    path = tmp_path / "client.ini"
    path.write_text("[kafka]\nbootstrap.servers = file:9092\nsasl.username = alice\n")
    config = load_client_config({"KAFKA_CONFIG_FILE": str(path), "KAFKA_BOOTSTRAP_SERVERS": "env:9092"})
    assert config.properties == {"bootstrap.servers": "env:9092", "sasl.username": "alice"}
    assert "KAFKA_CONFIG_FILE" in config.describe("sasl.username")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"KAFKA_CONFIG_FILE": "/nonexistent/client.ini"}, "KAFKA_CONFIG_FILE=/nonexistent/client.ini: cannot read it"),
        (
            {"KAFKA_NO_SUCH_THING": "1"},
            "KAFKA_NO_SUCH_THING (librdkafka property no.such.thing): No such configuration",
        ),
        ({"KAFKA_LINGER_MS": "soon"}, "KAFKA_LINGER_MS (librdkafka property linger.ms): Invalid value"),
        ({"KAFKA_ACKS": "banana"}, "KAFKA_ACKS (librdkafka property acks): Invalid value"),
    ],
)
def test_bad_client_configuration_names_its_source(environ, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_client_config(load_client_config(environ))


def test_config_file_without_kafka_section(tmp_path):
    path = tmp_path / "client.ini"
    path.write_text("[other]\na = b\n")
    with pytest.raises(ConfigError, match=r"has no \[kafka\] section"):
        load_client_config({"KAFKA_CONFIG_FILE": str(path)})


def test_malformed_config_file(tmp_path):
    path = tmp_path / "client.ini"
    path.write_text("bootstrap.servers = x\n")
    with pytest.raises(ConfigError, match="not a valid INI file"):
        load_client_config({"KAFKA_CONFIG_FILE": str(path)})


@pytest.mark.parametrize(
    ("raw", "message"), [("abc", "is not a valid int"), ("0", "must be at least 1"), ("70000", "must be at most 65535")]
)
def test_numbers_from_the_environment(raw, message):
    with pytest.raises(ConfigError, match=message):
        env_number("HTTP_PORT", 8080, int, 1, 65535, {"HTTP_PORT": raw})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"KAFKA_CONFIG_FILE": "/nonexistent.ini"},
            "configuration error: KAFKA_CONFIG_FILE=/nonexistent.ini: cannot read",
        ),
        ({"KAFKA_NO_SUCH_THING": "1"}, "configuration error: KAFKA_NO_SUCH_THING"),
        ({"HTTP_PORT": "eighty"}, "configuration error: HTTP_PORT='eighty' is not a valid int"),
        ({"KITCHEN_TIME_SCALE": "-1"}, "configuration error: KITCHEN_TIME_SCALE='-1' must be at least 0.0"),
        ({"ORDER_TTL_HOURS": "two"}, "configuration error: ORDER_TTL_HOURS='two' is not a valid float"),
    ],
)
@pytest.mark.parametrize("service", ["pizza-delivery", "pizza-status"])
def test_a_service_with_bad_configuration_exits_2_with_one_line(service, env, message):
    if service == "pizza-status" and "KITCHEN_TIME_SCALE" in env:
        env = {"STATUS_DB_PATH": "/nonexistent-dir/db.sqlite"}  # status has no kitchen time; a bad path instead
        message = "configuration error"
    result = subprocess.run(
        resolve_command(service), env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert "Traceback" not in result.stdout


def test_a_port_in_use_is_one_line_and_exit_2():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            resolve_command("pizza-bake"),
            capture_output=True,
            text=True,
            timeout=60,
            env={
                "PATH": "/usr/bin:/bin",
                "HTTP_HOST": "127.0.0.1",
                "HTTP_PORT": str(port),
                "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            },
        )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"configuration error: cannot listen on 127.0.0.1:{port} (HTTP_HOST, HTTP_PORT): Address already in use"
    )
