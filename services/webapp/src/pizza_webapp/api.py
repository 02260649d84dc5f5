"""The JSON API (see openapi.yaml): what a script with a cookie jar uses.

POSTs must say Content-Type: application/json (415 otherwise); with SameSite
cookies that is the API's CSRF defence.
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, g, jsonify, request, url_for

from kafka_common.shop import menu
from pizza_webapp import auth
from pizza_webapp.errors import ApiError
from pizza_webapp.orders import OrderRefused, Orders
from pizza_webapp.revocation import RevocationFailed
from pizza_webapp.status_client import StatusUnavailable
from pizza_webapp.validation import InvalidInput, parse_order, parse_username

STATUS_UNAVAILABLE = "order status is temporarily unavailable, please try again shortly"
LOGOUT_NOT_RECORDED = (
    "logged out in this client, but the logout could not be recorded for other copies of "
    "the session cookie (Kafka is unavailable); it expires by itself within 12 hours"
)

bp = Blueprint("api", __name__, url_prefix="/api")


def orders() -> Orders:
    return current_app.extensions["pizza.orders"]


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


@bp.errorhandler(auth.NotLoggedIn)
def _not_logged_in(_):
    return jsonify(error="not logged in: POST /api/login first"), 401


@bp.post("/login")
def login():
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    try:
        username = parse_username(body.get("username"))
    except InvalidInput as exc:
        raise ApiError(400, str(exc)) from None
    return jsonify(customer_id=auth.login(username), username=username)


@bp.post("/logout")
def logout():
    json_body(allow_empty=True)
    try:
        auth.logout()
    except RevocationFailed:
        raise ApiError(503, LOGOUT_NOT_RECORDED) from None
    return jsonify(logged_out=True)


@bp.get("/menu")
def menu_():
    return jsonify(menu.MENU)


@bp.post("/orders")
@auth.login_required
def place_order():
    body = json_body()
    try:
        pizza = parse_order(body)
    except InvalidInput as exc:
        raise ApiError(400, str(exc)) from None
    try:
        placed = orders().place(g.customer_id, auth.username(), pizza)
    except OrderRefused as exc:
        raise ApiError(exc.status, str(exc)) from None
    auth.remember_order(placed)
    response = jsonify(order_id=placed.order_id)
    response.status_code = 201
    response.headers["Location"] = url_for("api.order", order_id=placed.order_id)
    return response


@bp.get("/orders")
@auth.login_required
def my_orders():
    try:
        return jsonify(orders=orders().list(g.customer_id, auth.latest_order()))
    except StatusUnavailable:
        raise ApiError(503, STATUS_UNAVAILABLE) from None


@bp.get("/orders/<order_id>")
@auth.login_required
def order(order_id: str):
    try:
        found = orders().get(g.customer_id, order_id, auth.latest_order())
    except StatusUnavailable:
        raise ApiError(503, STATUS_UNAVAILABLE) from None
    if found is None:
        raise ApiError(404, "no such order")
    return jsonify(found)
