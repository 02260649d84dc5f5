"""The shop's Flask application: server-rendered pages and the JSON API.

Command side: an order is validated, becomes a PizzaOrdered event and is
confirmed to the customer only once Kafka acknowledged it. Query side: order
lists and details come from the status service; the position of the
customer's latest order travels with each read (wait_for) so the customer
always sees what they just ordered.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import (
    Flask,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException

from kafka_common import menu, metrics
from kafka_common.events import PizzaOrdered, new_order_id
from kafka_common.health import Health
from kafka_common.http import install_observability
from kafka_common.logging import get_logger
from kafka_common.producer import Delivered, ProduceError
from pizza_webapp.status_client import StatusClient, StatusUnavailable
from pizza_webapp.validation import InvalidInput, customer_id_for, parse_order, parse_order_form, parse_username

COMPONENT = "webapp"
ORDER_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_BODY_BYTES = 16 * 1024
READINESS_CACHE_S = 5.0
# How long the webapp vouches for a just-acknowledged order that status has not applied yet;
# past this, status's answer (maybe "unknown": dropped after ORDER_TTL_HOURS) is the truth.
PENDING_GRACE_S = 300.0
STATUS_UNAVAILABLE = "order status is temporarily unavailable, please try again shortly"
KAFKA_UNAVAILABLE = "the kitchen cannot take orders right now (Kafka is unavailable); nothing was ordered, please try again"
# Steps of the progress bar on the order page, in kitchen order.
PROGRESS = (
    (menu.STATUS_RECEIVED, "Received"),
    (menu.STATUS_IN_OVEN, "In the oven"),
    (menu.STATUS_OUT_FOR_DELIVERY, "On its way"),
    (menu.STATUS_DELIVERED, "Delivered"),
)

log = get_logger("webapp")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ProducerHolder:
    """One EventProducer per worker process, created on first use (after fork), closed on exit."""

    def __init__(self, factory: Callable[[], object]):
        self._factory = factory
        self._producer = None
        self._lock = threading.Lock()

    def get(self):
        if self._producer is None:
            with self._lock:
                if self._producer is None:
                    self._producer = self._factory()
        return self._producer

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close()


class CachedCheck:
    """Run a slow check at most once per ttl; concurrent callers share one answer."""

    def __init__(self, check: Callable[[], tuple[bool, str]], ttl_s: float):
        self._check = check
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._answer: tuple[bool, str] | None = None
        self._at = 0.0

    def __call__(self) -> tuple[bool, str]:
        with self._lock:
            if self._answer is None or time.monotonic() - self._at >= self._ttl:
                try:
                    self._answer = self._check()
                except Exception as exc:  # never let a probe raise
                    self._answer = (False, f"check failed: {exc}")
                self._at = time.monotonic()
            return self._answer


@dataclass
class Shop:
    producer: ProducerHolder
    status: StatusClient
    health: Health


def _wants_json() -> bool:
    return request.path.startswith("/api/")


# --- session helpers ---------------------------------------------------------------------

def _login(username: str) -> str:
    customer_id = customer_id_for(username)
    csrf = session.get("csrf")
    session.clear()
    session["username"] = username
    session["customer_id"] = customer_id
    session["csrf"] = csrf or secrets.token_urlsafe(32)
    return customer_id


def _current_customer() -> str | None:
    return session.get("customer_id")


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _check_csrf() -> None:
    expected = session.get("csrf")
    sent = request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        log.warning("form rejected: CSRF token missing or wrong", path=request.path)
        abort(400, description="This form has expired or did not come from this shop. Please try again.")


def _remember_order(order_id: str, pizza, delivered: Delivered) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    session["last_order"] = {
        "order_id": order_id,
        "wait_for": f"{delivered.partition}:{delivered.offset}",
        "order": pizza.model_dump(mode="json"),
        "ordered_at": now,
    }


def _wait_for() -> str | None:
    last = session.get("last_order")
    return last.get("wait_for") if isinstance(last, dict) else None


def _pending_order(order_id: str | None = None) -> dict | None:
    """The customer's latest order as known from its acknowledgement, while status catches up."""
    last = session.get("last_order")
    if not isinstance(last, dict) or (order_id is not None and last.get("order_id") != order_id):
        return None
    placed = _parse_time(last.get("ordered_at"))
    if placed is None or (datetime.now(UTC) - placed).total_seconds() > PENDING_GRACE_S:
        return None
    text = menu.status_text(menu.STATUS_RECEIVED)
    return {
        "order_id": last["order_id"],
        "status": menu.STATUS_RECEIVED,
        "status_text": text,
        "order": last["order"],
        "ordered_at": last["ordered_at"],
        "updated_at": last["ordered_at"],
        "events": [{"status": menu.STATUS_RECEIVED, "status_text": text, "at": last["ordered_at"]}],
    }


# --- views of the read model --------------------------------------------------------------

def _summary(order: dict) -> dict:
    return {
        "order_id": order.get("order_id"),
        "status": order.get("status"),
        "status_text": order.get("status_text"),
        "order": order.get("order"),
        "ordered_at": order.get("ordered_at"),
        "updated_at": order.get("updated_at"),
    }


def _detail(order: dict) -> dict:
    events = order.get("events")
    return {
        **_summary(order),
        "events": [
            {"status": e.get("status"), "status_text": e.get("status_text"), "at": e.get("at")}
            for e in (events if isinstance(events, list) else []) if isinstance(e, dict)
        ],
    }


def _my_orders(shop: Shop, customer_id: str) -> list[dict]:
    orders = [_summary(o) for o in shop.status.orders(customer_id, _wait_for())
              if o.get("customer_id") == customer_id]
    pending = _pending_order()
    if pending and not any(o["order_id"] == pending["order_id"] for o in orders):
        orders.insert(0, _summary(pending))
    return orders


def _my_order(shop: Shop, customer_id: str, order_id: str) -> dict | None:
    """The order's detail, or None for an unknown order or another customer's."""
    if not ORDER_ID.match(order_id):
        return None
    found = shop.status.order(order_id, _wait_for())
    if found is not None:
        return _detail(found) if found.get("customer_id") == customer_id else None
    return _pending_order(order_id)


def _place_order(shop: Shop, pizza) -> str:
    """Produce PizzaOrdered and wait for Kafka's acknowledgement; raises ProduceError."""
    event = PizzaOrdered(order_id=new_order_id(), customer_id=session["customer_id"],
                         username=session["username"], pizza=pizza)
    delivered = shop.producer.get().send(event)
    _remember_order(event.order_id, pizza, delivered)
    metrics.ORDERS_PLACED.labels(COMPONENT).inc()
    log.info("order placed", order_id=event.order_id, customer_id=event.customer_id,
             topic=delivered.topic, partition=delivered.partition, offset=delivered.offset)
    return event.order_id


# --- template helpers ----------------------------------------------------------------------

def _parse_time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _clock(value) -> str:
    parsed = _parse_time(value)
    return parsed.astimezone(UTC).strftime("%H:%M:%S UTC") if parsed else "—"


def _status_class(status) -> str:
    if not isinstance(status, int):
        return "unknown"
    if status < 0:
        return "error"
    return {100: "received", 200: "oven", 300: "delivery", 400: "delivered"}.get(status, "unknown")


def create_app(*, producer_factory: Callable[[], object], status: StatusClient, secret_key: str,
               health: Health | None = None, cookie_secure: bool = False,
               readiness_cache_s: float = READINESS_CACHE_S) -> Flask:
    app = Flask("pizza_webapp")
    app.json.sort_keys = False
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME="pizza_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cookie_secure,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES,
        TEMPLATES_AUTO_RELOAD=False,
    )
    health = health or Health()
    shop = Shop(ProducerHolder(producer_factory), status, health)
    app.extensions["pizza"] = shop

    def kafka_reachable() -> tuple[bool, str]:
        if shop.producer.get().cluster_reachable(timeout=2.0):
            return True, "Kafka reachable"
        return False, "Kafka unreachable"

    health.set_readiness(CachedCheck(kafka_reachable, readiness_cache_s))
    install_observability(app, COMPONENT, health)

    app.jinja_env.globals.update(csrf_token=csrf_token, menu=menu.MENU, progress=PROGRESS)
    app.jinja_env.filters.update(clock=_clock, status_class=_status_class)

    @app.before_request
    def _beat():
        # Liveness: this worker is taking requests (the probe itself is one).
        health.beat()
        g.username = session.get("username")

    @app.after_request
    def _headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # --- errors ---------------------------------------------------------------------------

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return jsonify(error=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if _wants_json():
            return jsonify(error=exc.description or exc.name), exc.code
        return render_template("error.html", code=exc.code, title=exc.name, message=exc.description), exc.code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error", path=request.path)
        if _wants_json():
            return jsonify(error="internal error"), 500
        return render_template("error.html", code=500, title="Something went wrong",
                               message="Our oven hiccupped. Please try again."), 500

    # --- JSON API -------------------------------------------------------------------------

    def json_body(allow_empty: bool = False):
        if request.mimetype != "application/json":
            raise ApiError(415, "Content-Type must be application/json")
        raw = request.get_data()
        if not raw.strip():
            if allow_empty:
                return {}
            raise ApiError(400, "request body is empty; send a JSON object")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ApiError(400, "request body is not valid JSON") from None

    def require_customer() -> str:
        customer_id = _current_customer()
        if not customer_id:
            raise ApiError(401, "not logged in: POST /api/login first")
        return customer_id

    @app.post("/api/login")
    def api_login():
        body = json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        try:
            username = parse_username(body.get("username"))
        except InvalidInput as exc:
            raise ApiError(400, str(exc)) from None
        customer_id = _login(username)
        log.info("customer logged in", customer_id=customer_id)
        return jsonify(customer_id=customer_id, username=username)

    @app.post("/api/logout")
    def api_logout():
        json_body(allow_empty=True)
        session.clear()
        return jsonify(logged_out=True)

    @app.get("/api/menu")
    def api_menu():
        return jsonify(menu.MENU)

    @app.post("/api/orders")
    def api_place_order():
        body = json_body()
        require_customer()
        try:
            pizza = parse_order(body)
        except InvalidInput as exc:
            raise ApiError(400, str(exc)) from None
        try:
            order_id = _place_order(shop, pizza)
        except ProduceError as exc:
            log.warning("order not placed: Kafka did not acknowledge it", error=str(exc))
            raise ApiError(503, KAFKA_UNAVAILABLE) from None
        response = jsonify(order_id=order_id)
        response.status_code = 201
        response.headers["Location"] = url_for("api_order", order_id=order_id)
        return response

    @app.get("/api/orders")
    def api_orders():
        customer_id = require_customer()
        try:
            return jsonify(orders=_my_orders(shop, customer_id))
        except StatusUnavailable:
            raise ApiError(503, STATUS_UNAVAILABLE) from None

    @app.get("/api/orders/<order_id>")
    def api_order(order_id: str):
        customer_id = require_customer()
        try:
            order = _my_order(shop, customer_id, order_id)
        except StatusUnavailable:
            raise ApiError(503, STATUS_UNAVAILABLE) from None
        if order is None:
            raise ApiError(404, "no such order")
        return jsonify(order)

    # --- pages ----------------------------------------------------------------------------

    def login_required():
        if not _current_customer():
            flash("Please tell us your name first.", "info")
            return redirect(url_for("login"), 303)
        return None

    @app.get("/")
    def index():
        return redirect(url_for("menu_page" if _current_customer() else "login"), 303)

    @app.route("/login", methods=["GET", "POST"])
    def login():
        if request.method == "GET":
            return render_template("login.html", username="")
        _check_csrf()
        raw = request.form.get("username")
        try:
            username = parse_username(raw)
        except InvalidInput as exc:
            return render_template("login.html", error=str(exc), username=raw or ""), 400
        customer_id = _login(username)
        log.info("customer logged in", customer_id=customer_id)
        return redirect(url_for("menu_page"), 303)

    @app.post("/logout")
    def logout():
        _check_csrf()
        session.clear()
        flash("You are logged out. Come back hungry!", "info")
        return redirect(url_for("login"), 303)

    @app.get("/menu")
    def menu_page():
        return login_required() or render_template("menu.html", chosen=None)

    @app.post("/order")
    def order_form():
        _check_csrf()
        if (gate := login_required()) is not None:
            return gate
        chosen = {"sauce": request.form.get("sauce"), "cheese": request.form.get("cheese"),
                  "main_topping": request.form.get("main_topping"),
                  "extra_toppings": request.form.getlist("extra_toppings")}
        try:
            pizza = parse_order_form(request.form)
        except InvalidInput as exc:
            return render_template("menu.html", chosen=chosen, error=str(exc)), 400
        try:
            order_id = _place_order(shop, pizza)
        except ProduceError as exc:
            log.warning("order not placed: Kafka did not acknowledge it", error=str(exc))
            return render_template("menu.html", chosen=chosen, error="Sorry, " + KAFKA_UNAVAILABLE + "."), 503
        return redirect(url_for("confirmation", order_id=order_id), 303)

    @app.get("/orders/<order_id>/confirmation")
    def confirmation(order_id: str):
        if (gate := login_required()) is not None:
            return gate
        pending = _pending_order(order_id)
        if pending is None:
            # An old confirmation link: the order page has everything.
            return redirect(url_for("order_page", order_id=order_id), 303)
        return render_template("confirmation.html", order=pending)

    @app.get("/orders")
    def orders_page():
        if (gate := login_required()) is not None:
            return gate
        try:
            orders = _my_orders(shop, session["customer_id"])
        except StatusUnavailable:
            pending = _pending_order()
            return render_template("orders.html", orders=[pending] if pending else [], unavailable=True), 503
        return render_template("orders.html", orders=orders, unavailable=False)

    @app.get("/orders/<order_id>")
    def order_page(order_id: str):
        if (gate := login_required()) is not None:
            return gate
        try:
            order = _my_order(shop, session["customer_id"], order_id)
        except StatusUnavailable:
            pending = _pending_order(order_id) if ORDER_ID.match(order_id) else None
            return render_template("order.html", order=pending, order_id=order_id, unavailable=True), 503
        if order is None:
            abort(404, description="We could not find that order. It may be someone else's, or too old.")
        return render_template("order.html", order=order, order_id=order_id, unavailable=False)

    return app
