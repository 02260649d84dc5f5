"""Who the customer is: logins, logouts, the login_required decorator and CSRF tokens.

A login gets a random customer id (never derived from the name) and a random
session id. The session travels in a signed cookie that expires after
SESSION_LIFETIME; logout records the session id as revoked (see revocation.py)
so a copy of the cookie stops working on every worker and replica.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from datetime import timedelta

from flask import abort, current_app, flash, g, redirect, request, session, url_for

from kafka_common.logging import get_logger
from pizza_webapp.orders import Placed
from pizza_webapp.validation import new_customer_id

SESSION_LIFETIME = timedelta(hours=12)
log = get_logger("webapp")


class NotLoggedIn(Exception):
    """The JSON API's 401."""


def revocations():
    return current_app.extensions["pizza.revocations"]


def login(username: str) -> str:
    """Start a new session for a new customer; returns the customer id."""
    csrf = session.get("csrf")
    session.clear()
    session.permanent = True  # expires after SESSION_LIFETIME: revocation records need not live longer
    session["sid"] = secrets.token_urlsafe(24)
    session["customer_id"] = customer_id = new_customer_id()
    session["username"] = username
    session["csrf"] = csrf or secrets.token_urlsafe(32)
    log.info("customer logged in", customer_id=customer_id)
    return customer_id


def logout() -> None:
    """End the session everywhere; raises RevocationFailed when that could not be recorded."""
    sid = session.get("sid")
    customer_id = session.get("customer_id")
    session.clear()  # this browser forgets it, whatever happens next
    if sid:
        revocations().revoke(sid)
        log.info("customer logged out", customer_id=customer_id)


def current_customer() -> str | None:
    """The logged-in customer's id, or None (no session, or a session that was logged out)."""
    customer_id = session.get("customer_id")
    sid = session.get("sid")
    if not customer_id or not sid:
        return None
    if revocations().is_revoked(sid):
        session.clear()
        return None
    return customer_id


def username() -> str:
    return session["username"]


def latest_order() -> Placed | None:
    return Placed.from_dict(session.get("last_order"))


def remember_order(placed: Placed) -> None:
    session["last_order"] = placed.as_dict()


def login_required(view):
    """Pages redirect to the login page, the JSON API answers 401; g.customer_id is set."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        customer_id = current_customer()
        if customer_id is None:
            if request.blueprint == "api":
                raise NotLoggedIn()
            flash("Please tell us your name first.", "info")
            return redirect(url_for("pages.login"), 303)
        g.customer_id = customer_id
        return view(*args, **kwargs)

    return wrapped


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    expected = session.get("csrf")
    sent = request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode(errors="replace")):
        log.warning("form rejected: CSRF token missing or wrong", path=request.path)
        abort(400, description="This form has expired or did not come from this shop. Please try again.")
