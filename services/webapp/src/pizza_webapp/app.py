"""The shop's Flask application: configuration, blueprints (pages, JSON API), errors, headers.

What each part holds: auth.py (sessions, login_required, CSRF), orders.py (placing
and reading orders), pages.py and api.py (the two faces), body.py (request bodies
read in full within a deadline), errors.py (JSON or a page, never a 500 for bad input).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from flask import Flask, Response, g, request, session

from kafka_common.health import Health
from kafka_common.http import install_observability, keep_key_order
from kafka_common.shop import menu
from kafka_common.shop.status import NAMES as STATUS_NAMES
from kafka_common.shop.status import status_name
from pizza_webapp import api, auth, pages
from pizza_webapp.body import BODY_TIMEOUT_S, BufferedBody, raise_body_error
from pizza_webapp.errors import install_error_handlers
from pizza_webapp.orders import COMPONENT, DEFAULT_MAX_OPEN_ORDERS, Orders, direct, parse_time
from pizza_webapp.revocation import RevokedSessions
from pizza_webapp.status_client import StatusClient

MAX_BODY_BYTES = 16 * 1024
CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class ProducerHolder:
    """One EventProducer per worker process, created on first use (after fork), closed on exit."""

    def __init__(self, factory: Callable[[], object]):
        self._factory = factory
        self._producer = None

    def get(self):
        if self._producer is None:
            self._producer = self._factory()
        return self._producer

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close()


def _clock(value) -> str:
    parsed = parse_time(value)
    return parsed.strftime("%H:%M:%S UTC") if parsed else "—"


def create_app(
    *,
    producer_factory: Callable[[], object],
    status: StatusClient,
    secret_key: str,
    health: Health | None = None,
    cookie_secure: bool = False,
    max_open_orders: int = DEFAULT_MAX_OPEN_ORDERS,
    offload=direct,
    revocations: RevokedSessions | None = None,
    body_timeout_s: float = BODY_TIMEOUT_S,
) -> Flask:
    app = Flask("pizza_webapp")
    keep_key_order(app)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME="pizza_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cookie_secure,
        PERMANENT_SESSION_LIFETIME=auth.SESSION_LIFETIME,
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES,
        TEMPLATES_AUTO_RELOAD=False,
    )
    health = health or Health()
    producer = ProducerHolder(producer_factory)
    app.extensions["pizza.producer"] = producer
    app.extensions["pizza.orders"] = Orders(producer.get, status, max_open_orders, offload)
    app.extensions["pizza.revocations"] = (
        revocations if revocations is not None else RevokedSessions(auth.SESSION_LIFETIME.total_seconds())
    )
    app.wsgi_app = BufferedBody(app.wsgi_app, MAX_BODY_BYTES, body_timeout_s)  # type: ignore[method-assign]

    # Readiness: this worker serves pages. It never depends on Kafka or the status service,
    # which every replica shares: ordering answers 503 instead, the pages say what is missing.
    health.set_readiness(lambda: (True, "serving"))
    install_observability(app, COMPONENT, health)
    install_error_handlers(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)

    app.jinja_env.globals.update(
        csrf_token=auth.csrf_token, menu=menu.MENU, progress=pages.PROGRESS, status_names=STATUS_NAMES
    )
    app.jinja_env.filters.update(clock=_clock, status_class=status_name)

    @app.before_request
    def _before():
        # Liveness: this worker is taking requests (the probe itself is one).
        health.beat()
        raise_body_error(request.environ)
        g.username = session.get("username") if auth.current_customer() else None

    @app.after_request
    def _headers(response: Response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", CSP)
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/api/openapi.yaml")
    def openapi():
        spec = resources.files("pizza_webapp").joinpath("openapi.yaml").read_text(encoding="utf-8")
        return Response(spec, mimetype="application/yaml")

    return app
