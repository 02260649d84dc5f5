"""pizza-webapp: the gunicorn server that runs the shop's Flask app (no business here).

The master validates configuration (exit 2 with one line on a mistake), sets
up Prometheus multiprocess mode and the session key, then forks workers. Each
worker builds its own app and Kafka producer after the fork, and flushes the
producer when it exits.

Worker class: gevent, with threads left unpatched (worker.py). Every
connection is a greenlet, so a client that stalls in its headers or body, an
order waiting for Kafka's acknowledgement or a read waiting for the status
service holds nothing that probes and other customers need. librdkafka's
calls block in C, so they never run on the event loop: the producer's
callback thread stays a real thread, and each produce-and-wait runs on a
bounded pool of real threads (KAFKA_THREADS per worker) that the request's
greenlet waits on, with a deadline.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kafka_common.shop import components, topics
from kafka_common.usage import KafkaUsage
from pizza_webapp.revocation import LOGOUTS_TOPIC

# pizza-logouts is the webapp's own: every worker reads it whole (assign(), never joins the
# group, commits nothing) to refuse logged-out session cookies. See revocation.py.
KAFKA_USAGE = KafkaUsage(
    component="webapp",
    consumes=(LOGOUTS_TOPIC,),
    produces=(topics.PIZZA_ORDERED, LOGOUTS_TOPIC),
    group="pizza-webapp",
    assigns_partitions=True,
    dead_letters=False,
)

DEFAULT_HTTP_PORT = components.BY_NAME["webapp"].http_port
DEFAULT_STATUS_URL = components.STATUS_API_URL
GRACEFUL_TIMEOUT_S = 20


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    workers: int
    connections: int
    kafka_threads: int
    body_timeout_s: float
    status_url: str
    status_timeout_s: float
    secret_key: str
    secret_key_generated: bool
    cookie_secure: bool
    max_open_orders: int


def load_settings() -> Settings:
    from kafka_common.config import ConfigError, env_bool, env_number, env_str, http_host, http_port
    from pizza_webapp.body import BODY_TIMEOUT_S
    from pizza_webapp.orders import DEFAULT_MAX_OPEN_ORDERS

    status_url = env_str("STATUS_URL", DEFAULT_STATUS_URL).strip()
    parts = urlsplit(status_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"STATUS_URL={status_url!r} is not an http(s) URL")
    secret_key = os.environ.get("SECRET_KEY", "")
    generated = not secret_key
    if generated:
        # Made in the master, before the fork, so every worker signs with the same key.
        secret_key = secrets.token_hex(32)
    return Settings(
        host=http_host(),
        port=http_port(DEFAULT_HTTP_PORT),
        workers=env_number("WEB_CONCURRENCY", 2, int, 1, 64),
        connections=env_number("WEB_CONNECTIONS", 1000, int, 10, 100_000),
        kafka_threads=env_number("WEB_KAFKA_THREADS", 16, int, 1, 256),
        body_timeout_s=env_number("WEB_BODY_TIMEOUT_S", BODY_TIMEOUT_S, float, 0.1, 300.0),
        status_url=status_url,
        status_timeout_s=env_number("STATUS_TIMEOUT_S", 2.0, float, 0.1, 30.0),
        secret_key=secret_key,
        secret_key_generated=generated,
        cookie_secure=env_bool("SESSION_COOKIE_SECURE", False),
        max_open_orders=env_number("MAX_OPEN_ORDERS_PER_CUSTOMER", DEFAULT_MAX_OPEN_ORDERS, int, 0, 10_000),
    )


def _prepare_metrics_dir() -> str:
    """Multiprocess mode needs its directory before prometheus_client is first imported."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="pizza-webapp-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def _wipe_metrics_dir(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            try:
                os.unlink(full)
            except FileNotFoundError:
                pass


def build_app(settings: Settings, kafka_config):
    """The Flask app of one worker, with its own producer (created on first use, after fork)."""
    from kafka_common.health import Health
    from kafka_common.producer import EventProducer
    from pizza_webapp.app import create_app
    from pizza_webapp.auth import SESSION_LIFETIME
    from pizza_webapp.orders import MESSAGE_TIMEOUT_S
    from pizza_webapp.revocation import KafkaRevokedSessions
    from pizza_webapp.status_client import StatusClient

    offload = ThreadOffload(settings.kafka_threads)
    return create_app(
        producer_factory=lambda: EventProducer(kafka_config, "webapp", message_timeout_s=MESSAGE_TIMEOUT_S),
        status=StatusClient(
            settings.status_url,
            read_timeout=settings.status_timeout_s,
            wait_read_timeout=settings.status_timeout_s + 3.0,
        ),
        secret_key=settings.secret_key,
        health=Health(),
        cookie_secure=settings.cookie_secure,
        max_open_orders=settings.max_open_orders,
        body_timeout_s=settings.body_timeout_s,
        offload=offload,
        revocations=KafkaRevokedSessions(kafka_config, SESSION_LIFETIME.total_seconds(), offload, KAFKA_USAGE.group_id),
    )


class ThreadOffload:
    """Run a blocking Kafka call on a real thread while the request's greenlet waits, with a deadline.

    Created in the worker (after gevent's patching); the pool is bounded, so an outage
    queues orders here instead of starting threads without end. A call that is still queued
    when its greenlet gives up starts, sees its deadline passed, and does nothing.
    """

    def __init__(self, size: int):
        self.size = size
        self._pool: Any = None  # gevent ThreadPool, created on first use (after the fork)

    def __call__(self, fn, timeout_s: float):
        import gevent

        from kafka_common.producer import ProduceError

        if self._pool is None:
            from gevent.threadpool import ThreadPool

            self._pool = ThreadPool(self.size)
        result = self._pool.spawn(_outcome, fn)
        try:
            ok, value = result.get(timeout=timeout_s)
        except gevent.Timeout:
            raise ProduceError(f"no answer from Kafka within {timeout_s:.1f} s") from None
        if not ok:
            raise value
        return value


def _outcome(fn):
    # The failure travels back as a value: raised inside the pool, gevent would print it as a crash.
    try:
        return True, fn()
    except Exception as exc:
        return False, exc


def _gunicorn_classes():
    import logging

    from gunicorn.app.base import BaseApplication
    from gunicorn.glogging import Logger

    from kafka_common.logging import get_logger

    class StructlogLogger(Logger):
        """gunicorn's error and access logs through the library's structlog setup (root handler)."""

        def setup(self, cfg):
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                log.handlers[:] = []
                log.propagate = True
            # No level of its own: LOG_LEVEL (the root logger's) decides, probe lines are DEBUG.
            self.access_log.setLevel(logging.NOTSET)
            self._access = get_logger("gunicorn.access")

        def access(self, resp, req, environ, request_time):
            path = environ.get("PATH_INFO", "")
            status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
            fields = dict(
                method=environ.get("REQUEST_METHOD"),
                path=path,
                status=int(status),
                duration_ms=round(request_time.total_seconds() * 1000, 1),
                remote=environ.get("REMOTE_ADDR"),
                bytes=getattr(resp, "sent", None),
                user_agent=environ.get("HTTP_USER_AGENT"),
            )
            # Probes and scrapes every few seconds would drown the shop's own lines.
            if path in ("/healthz", "/readyz", "/metrics") or path.startswith("/static/"):
                self._access.debug("request", **fields)
            else:
                self._access.info("request", **fields)

    class WebApp(BaseApplication):
        def __init__(self, settings: Settings, kafka_config, metrics_dir: str):
            self.settings = settings
            self.kafka_config = kafka_config
            self.metrics_dir = metrics_dir
            super().__init__()

        def load_config(self):
            settings = self.settings
            metrics_dir = self.metrics_dir
            options = {
                "bind": f"{settings.host}:{settings.port}",
                "workers": settings.workers,
                "worker_class": "pizza_webapp.worker.PizzaGeventWorker",
                "worker_connections": settings.connections,
                "graceful_timeout": GRACEFUL_TIMEOUT_S,
                "timeout": 30,
                "keepalive": 5,
                "logger_class": StructlogLogger,
                "accesslog": "-",
                "errorlog": "-",
                "proc_name": "pizza-webapp",
                "on_starting": lambda server: _wipe_metrics_dir(metrics_dir),
                "post_worker_init": _post_worker_init,
                "worker_exit": _worker_exit,
                "child_exit": _child_exit,
                # gunicorn ends the process from inside run(): the last word is said here.
                "on_exit": lambda server: get_logger("webapp").info("webapp stopped"),
            }
            if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
                options["worker_tmp_dir"] = "/dev/shm"  # heartbeat files off a possibly slow disk
            if "control_socket_disable" in self.cfg.settings:
                # No control socket in $HOME: several webapps may share a host, containers run read-only.
                options["control_socket_disable"] = True
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return build_app(self.settings, self.kafka_config)

    return WebApp


def _post_worker_init(worker) -> None:
    from kafka_common.logging import get_logger

    worker.wsgi.extensions["pizza.revocations"].start()
    try:
        worker.wsgi.extensions["pizza.producer"].get()  # connect now, not on the first customer's order
    except Exception as exc:  # the first order will try again and answer 503 if it must
        get_logger("webapp").warning("producer not created at start", error=str(exc))
    get_logger("webapp").info("worker ready", pid=os.getpid())


def _worker_exit(server, worker) -> None:
    from kafka_common.logging import get_logger

    log = get_logger("webapp")
    log.info("worker exiting: flushing the producer", pid=worker.pid)
    wsgi = getattr(worker, "wsgi", None)
    if wsgi is not None and "pizza.producer" in getattr(wsgi, "extensions", {}):
        wsgi.extensions["pizza.producer"].close()
        wsgi.extensions["pizza.revocations"].close()
    log.info("worker exited", pid=worker.pid)


def _child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def run_gunicorn() -> int:
    metrics_dir = _prepare_metrics_dir()  # before anything imports prometheus_client

    from kafka_common.config import check_client_config, load_client_config
    from kafka_common.logging import configure_logging, get_logger

    configure_logging("webapp")
    log = get_logger("webapp")
    settings = load_settings()
    kafka_config = load_client_config()
    check_client_config(kafka_config)
    if settings.secret_key_generated:
        log.warning(
            "SECRET_KEY is not set: signing sessions with a random key; sessions end when the "
            "webapp restarts and are not shared with other replicas. Set SECRET_KEY in production."
        )
    log.info(
        "starting webapp",
        port=settings.port,
        workers=settings.workers,
        connections=settings.connections,
        max_open_orders_per_customer=settings.max_open_orders,
        status_url=settings.status_url,
        metrics_dir=metrics_dir,
        bootstrap_servers=kafka_config.properties.get("bootstrap.servers"),
    )
    _gunicorn_classes()(settings, kafka_config, metrics_dir).run()
    return 0


def main() -> None:
    from kafka_common.config import run_main

    run_main(run_gunicorn)
