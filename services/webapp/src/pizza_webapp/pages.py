"""Server-rendered pages: login, menu, confirmation, my orders, order detail. Forms carry CSRF tokens."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from kafka_common.shop.ids import is_order_id
from kafka_common.shop.status import STATUS_DELIVERED, STATUS_IN_OVEN, STATUS_OUT_FOR_DELIVERY, STATUS_RECEIVED
from pizza_webapp import auth
from pizza_webapp.orders import OrderRefused, Orders
from pizza_webapp.revocation import RevocationFailed
from pizza_webapp.status_client import StatusUnavailable
from pizza_webapp.validation import InvalidInput, parse_order_form, parse_username

bp = Blueprint("pages", __name__)


def orders() -> Orders:
    return current_app.extensions["pizza.orders"]


@bp.get("/")
def index():
    return redirect(url_for("pages.menu_page" if auth.current_customer() else "pages.login"), 303)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("login.html", username="")
    auth.check_csrf()
    raw = request.form.get("username")
    try:
        username = parse_username(raw)
    except InvalidInput as exc:
        return render_template("login.html", error=str(exc), username=raw or ""), 400
    auth.login(username)
    return redirect(url_for("pages.menu_page"), 303)


@bp.post("/logout")
def logout():
    auth.check_csrf()
    try:
        auth.logout()
    except RevocationFailed:
        flash(
            "You are logged out in this browser. Kafka is unavailable, so other copies of your session "
            "end only when it expires.",
            "info",
        )
        return redirect(url_for("pages.login"), 303)
    flash("You are logged out. Come back hungry!", "info")
    return redirect(url_for("pages.login"), 303)


@bp.get("/menu")
@auth.login_required
def menu_page():
    return render_template("menu.html", chosen=None)


@bp.post("/order")
@auth.login_required
def order_form():
    auth.check_csrf()
    chosen = {
        "sauce": request.form.get("sauce"),
        "cheese": request.form.get("cheese"),
        "main_topping": request.form.get("main_topping"),
        "extra_toppings": request.form.getlist("extra_toppings"),
    }
    try:
        pizza = parse_order_form(request.form)
    except InvalidInput as exc:
        return render_template("menu.html", chosen=chosen, error=str(exc)), 400
    try:
        placed = orders().place(g.customer_id, auth.username(), pizza)
    except OrderRefused as exc:
        return render_template("menu.html", chosen=chosen, error=f"Sorry, {exc}."), exc.status
    auth.remember_order(placed)
    return redirect(url_for("pages.confirmation", order_id=placed.order_id), 303)


@bp.get("/orders/<order_id>/confirmation")
@auth.login_required
def confirmation(order_id: str):
    pending = Orders.pending(order_id, auth.latest_order())
    if pending is None:
        # An old confirmation link: the order page has everything.
        return redirect(url_for("pages.order_page", order_id=order_id), 303)
    return render_template("confirmation.html", order=pending)


@bp.get("/orders")
@auth.login_required
def orders_page():
    latest = auth.latest_order()
    try:
        found = orders().list(g.customer_id, latest)
    except StatusUnavailable:
        pending = latest.pending_view() if latest else None
        return render_template("orders.html", orders=[pending] if pending else [], unavailable=True), 503
    return render_template("orders.html", orders=found, unavailable=False)


@bp.get("/orders/<order_id>")
@auth.login_required
def order_page(order_id: str):
    latest = auth.latest_order()
    try:
        order = orders().get(g.customer_id, order_id, latest)
    except StatusUnavailable:
        pending = Orders.pending(order_id, latest) if is_order_id(order_id) else None
        return render_template("order.html", order=pending, order_id=order_id, unavailable=True), 503
    if order is None:
        abort(404, description="We could not find that order. It may be someone else's, or too old.")
    return render_template("order.html", order=order, order_id=order_id, unavailable=False)


# Steps of the progress bar on the order page, in kitchen order.
PROGRESS = (
    (STATUS_RECEIVED, "Received"),
    (STATUS_IN_OVEN, "In the oven"),
    (STATUS_OUT_FOR_DELIVERY, "On its way"),
    (STATUS_DELIVERED, "Delivered"),
)
