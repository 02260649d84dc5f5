"""Configuration from the environment.

Kafka: KAFKA_BOOTSTRAP_SERVERS (default localhost:9092); any librdkafka
property as KAFKA_<PROPERTY> with dots as underscores; optionally
KAFKA_CONFIG_FILE, an INI file whose [kafka] section holds librdkafka
properties (environment variables win over the file).

Bad configuration raises ConfigError with one readable line; entry points
turn it into exit code 2 (see run_main).
"""

from __future__ import annotations

import configparser
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_BOOTSTRAP = "localhost:9092"
# KAFKA_* variables that are not librdkafka properties.
NOT_CLIENT_PROPERTIES = frozenset({"KAFKA_CONFIG_FILE", "KAFKA_HOME"})


class ConfigError(Exception):
    """Configuration the service cannot start with."""


@dataclass(frozen=True)
class ClientConfig:
    """librdkafka properties plus where each came from, for error messages."""

    properties: dict[str, str]
    origin: dict[str, str]

    def describe(self, prop: str) -> str:
        return self.origin.get(prop, prop)


class _CaseSensitiveParser(configparser.ConfigParser):
    """librdkafka property names are case-sensitive: keep them as written."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def load_client_config(environ: Mapping[str, str] | None = None) -> ClientConfig:
    env = os.environ if environ is None else environ
    props: dict[str, str] = {"bootstrap.servers": DEFAULT_BOOTSTRAP}
    origin: dict[str, str] = {"bootstrap.servers": "the default bootstrap.servers"}
    path = env.get("KAFKA_CONFIG_FILE")
    if path:
        parser = _CaseSensitiveParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
        except OSError as exc:
            raise ConfigError(f"KAFKA_CONFIG_FILE={path}: cannot read it ({exc.strerror})") from exc
        except configparser.Error as exc:
            raise ConfigError(
                f"KAFKA_CONFIG_FILE={path}: not a valid INI file ({exc.message.splitlines()[0]})"
            ) from exc
        if not parser.has_section("kafka"):
            raise ConfigError(f"KAFKA_CONFIG_FILE={path}: has no [kafka] section")
        for prop, value in parser.items("kafka"):
            props[prop] = value
            origin[prop] = f"{prop} in KAFKA_CONFIG_FILE={path}"
    for name, value in env.items():
        if not name.startswith("KAFKA_") or name in NOT_CLIENT_PROPERTIES:
            continue
        prop = name[len("KAFKA_") :].lower().replace("_", ".")
        if not prop:
            continue
        props[prop] = value
        origin[prop] = f"{name} (librdkafka property {prop})"
    return ClientConfig(props, origin)


def kafka_client_config(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    return dict(load_client_config(environ).properties)


# librdkafka reports some properties under their canonical name.
PROPERTY_ALIASES = {
    "acks": "request.required.acks",
    "linger.ms": "queue.buffering.max.ms",
    "retries": "message.send.max.retries",
    "bootstrap.servers": "metadata.broker.list",
    "max.in.flight": "max.in.flight.requests.per.connection",
    "compression.type": "compression.codec",
    "message.timeout.ms": "delivery.timeout.ms",
}


def explain_client_error(config: ClientConfig, message: str) -> str:
    """Name the variable behind librdkafka's complaint about a property."""
    for prop in sorted(config.properties, key=len, reverse=True):
        names = {prop, PROPERTY_ALIASES.get(prop, prop)}
        if any(f'"{name}"' in message or f"'{name}'" in message for name in names):
            return f"{config.describe(prop)}: {message}"
    return message


def check_client_config(config: ClientConfig) -> None:
    """Let librdkafka judge every property now, so a typo fails start-up with one line.

    Creating a client does not wait for the cluster, so this works while Kafka is down.
    """
    from confluent_kafka import KafkaException, Producer

    try:
        Producer({**config.properties, "logger": _silent})
    except KafkaException as exc:
        raise ConfigError(explain_client_error(config, exc.args[0].str())) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(explain_client_error(config, str(exc))) from exc


class _SilentLogger:
    def log(self, *args, **kwargs):
        pass


_silent = _SilentLogger()


def env_str(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get(name, default)


def env_number(
    name: str, default, kind: Callable = float, minimum=None, maximum=None, environ: Mapping[str, str] | None = None
):
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={raw!r} must be at most {maximum}")
    return value


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={env[name]!r} is not a boolean (use true or false)")


def http_host(environ: Mapping[str, str] | None = None) -> str:
    """HTTP_HOST: the address to listen on; every interface (containers) unless told otherwise."""
    return env_str("HTTP_HOST", "0.0.0.0", environ).strip() or "0.0.0.0"


def http_port(default: int, environ: Mapping[str, str] | None = None) -> int:
    return env_number("HTTP_PORT", default, int, 1, 65535, environ)


def api_port(default: int, environ: Mapping[str, str] | None = None) -> int:
    """API_PORT: a service's own API, apart from probes and metrics (status's query API)."""
    return env_number("API_PORT", default, int, 1, 65535, environ)


def run_main(main: Callable[[], int | None]) -> None:
    """Run an entry point: ConfigError becomes one line on stderr and exit code 2."""
    try:
        code = main()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)
