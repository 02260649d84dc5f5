"""The HTTP side every service has: /healthz, /readyz, /metrics and request metrics.

create_app() gives those routes as a bare WSGI app: a consumer service needs
no web framework for them (Flask and its dependencies are ~7 MiB of a kitchen's
memory). Flask apps get them from install_observability() (the webapp, a full
Flask app) and create_api_app() holds a service's own routes on a port of its
own (status's query API); Flask is imported only by those. Consumer services
serve their apps with waitress on a background thread (HTTPServer); the
webapp runs under gunicorn.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from kafka_common import metrics
from kafka_common.config import ConfigError, http_host
from kafka_common.health import Health
from kafka_common.logging import get_logger

if TYPE_CHECKING:
    from flask import Flask

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _metrics_payload() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # gunicorn workers each write their own files; aggregate them per scrape.
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def install_observability(app: Flask, component: str, health: Health) -> None:
    """Add the probe and metrics routes and time every request by its route template."""
    from flask import Response, jsonify

    @app.get("/healthz")
    def healthz():
        ok, detail = health.live()
        return jsonify(status="ok" if ok else "failing", detail=detail), 200 if ok else 503

    @app.get("/readyz")
    def readyz():
        ok, detail = health.ready()
        return jsonify(status="ready" if ok else "not ready", detail=detail), 200 if ok else 503

    @app.get("/metrics")
    def prometheus_metrics():
        return Response(_metrics_payload(), mimetype=CONTENT_TYPE_LATEST)

    install_request_metrics(app, component)


def install_request_metrics(app: Flask, component: str) -> None:
    """Time every request by its route template (probes and scrapes excepted)."""
    from flask import g, request

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.get("request_started")
        if started is not None and request.path not in PROBE_PATHS:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            metrics.HTTP_REQUEST_SECONDS.labels(component, route, request.method, str(response.status_code)).observe(
                time.perf_counter() - started
            )
        return response


class ProbeApp:
    """GET /healthz, /readyz and /metrics as a WSGI app, with the same answers as
    install_observability() gives a Flask app."""

    def __init__(self, health: Health):
        self.health = health

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in PROBE_PATHS:
            return _respond(start_response, "404 Not Found", {"error": "not found"})
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _respond(start_response, "405 Method Not Allowed", {"error": "method not allowed"})
        if path == "/metrics":
            body = _metrics_payload()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/healthz":
            ok, detail = self.health.live()
            answer = "ok" if ok else "failing"
        else:
            ok, detail = self.health.ready()
            answer = "ready" if ok else "not ready"
        return _respond(
            start_response, "200 OK" if ok else "503 Service Unavailable", {"status": answer, "detail": detail}
        )


def keep_key_order(app: Flask) -> None:
    """JSON responses keep their keys in the order the code writes them."""
    from flask.json.provider import DefaultJSONProvider

    class JSONInOrder(DefaultJSONProvider):
        sort_keys = False

    app.json = JSONInOrder(app)


def _respond(start_response: Callable, status: str, document: dict[str, Any]) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def create_app(component: str, health: Health) -> ProbeApp:
    return ProbeApp(health)


def create_api_app(component: str, blueprints) -> Flask:
    """An app of a service's own routes only, for a port of its own (API_PORT): what may
    scrape metrics or probe the pod cannot reach it, and it cannot reach the probes."""
    from flask import Flask

    app = Flask(f"pizza-{component}-api")
    keep_key_order(app)
    install_request_metrics(app, component)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app


class HTTPServer:
    """waitress on a daemon thread: probes and metrics beside a poll loop."""

    def __init__(self, app: Callable, port: int, host: str | None = None, threads: int = 4, what: str = "HTTP_PORT"):
        from waitress.server import create_server

        host = host or http_host()
        self._log = get_logger()
        try:
            self._server = create_server(
                app, host=host, port=port, threads=threads, ident=None, clear_untrusted_proxy_headers=True
            )
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} (HTTP_HOST, {what}): {exc.strerror or exc}") from exc
        self.port = self._server.effective_port
        self._what = what
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    def start(self) -> HTTPServer:
        self._thread.start()
        self._log.info("HTTP server listening", port=self.port, serves=self._what)
        return self

    def stop(self) -> None:
        self._server.close()
        self._log.info("HTTP server stopped")
