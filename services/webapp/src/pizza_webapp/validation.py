"""Input checks with one clear message per problem, run before any event is built.

The event schema (kafka_common.shop.events) would reject the same input, but its
messages are written for operators; a customer or an API client gets these. What
passes here is built into an event directly: the schema checks it again on consume.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Mapping

from kafka_common.shop import menu
from kafka_common.shop.events import MAX_EXTRA_TOPPINGS, MAX_USERNAME_LENGTH, Pizza

ORDER_FIELDS = ("sauce", "cheese", "main_topping", "extra_toppings")
_CHOICES = {
    "sauce": ("sauce", menu.SAUCES),
    "cheese": ("cheese", menu.CHEESES),
    "main_topping": ("main topping", menu.MAIN_TOPPINGS),
}


class InvalidInput(ValueError):
    """The request cannot be served as sent; str(exc) is the message for the client."""


def new_customer_id() -> str:
    """A fresh customer for every login: 128 random bits, hex (the events' customer_id format).

    Never derived from the user name, so typing someone's name shows nothing of theirs.
    """
    return secrets.token_hex(16)


def _is_control(char: str) -> bool:
    # Cc: C0/C1 controls (newlines, tabs, escape...); Cf: invisible format characters
    # (bidi overrides, zero-width joiners) that make a name look like another;
    # Zl/Zp: line and paragraph separators.
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def parse_username(value: object) -> str:
    if value is None:
        raise InvalidInput("username is required")
    if not isinstance(value, str):
        raise InvalidInput("username must be a string")
    if any(unicodedata.category(c) == "Cs" for c in value):
        # A lone surrogate (\ud800 in JSON) is not text: it cannot be encoded as UTF-8.
        raise InvalidInput("username must be valid Unicode text")
    if any(_is_control(c) for c in value):
        raise InvalidInput("username must not contain control characters")
    name = value.strip()
    if not name:
        raise InvalidInput("username must not be empty")
    if len(name) > MAX_USERNAME_LENGTH:
        raise InvalidInput(f"username must be at most {MAX_USERNAME_LENGTH} characters")
    return name


def _choice(field: str, value: object) -> str:
    label, options = _CHOICES[field]
    if value is None:
        raise InvalidInput(f"{field} is required")
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string")
    if value not in options:
        raise InvalidInput(f"unknown {label} {value!r}; choose one of: {', '.join(options)}")
    return value


def _extras(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidInput("extra_toppings must be a list")
    if len(value) > MAX_EXTRA_TOPPINGS:
        raise InvalidInput(f"at most {MAX_EXTRA_TOPPINGS} extra toppings, got {len(value)}")
    seen: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise InvalidInput("extra_toppings must be a list of strings")
        if item not in menu.EXTRA_TOPPINGS:
            raise InvalidInput(f"unknown extra topping {item!r}; choose from: {', '.join(menu.EXTRA_TOPPINGS)}")
        if item in seen:
            raise InvalidInput(f"extra topping {item!r} is listed more than once")
        seen.append(item)
    return tuple(seen)


def parse_order(body: object) -> Pizza:
    """A JSON order body, already parsed, to a Pizza of the menu."""
    if not isinstance(body, Mapping):
        raise InvalidInput("request body must be a JSON object")
    unexpected = sorted(k for k in body if k not in ORDER_FIELDS)
    if unexpected:
        raise InvalidInput(f"unexpected field {unexpected[0]!r}; an order has {', '.join(ORDER_FIELDS)}")
    return Pizza(
        sauce=_choice("sauce", body.get("sauce")),
        cheese=_choice("cheese", body.get("cheese")),
        main_topping=_choice("main_topping", body.get("main_topping")),
        extra_toppings=_extras(body.get("extra_toppings")),
    )


def parse_order_form(form) -> Pizza:
    """The menu page's form (a MultiDict): radio groups and extra-topping checkboxes."""
    body = {field: form.get(field) for field in ("sauce", "cheese", "main_topping") if form.get(field)}
    body["extra_toppings"] = form.getlist("extra_toppings")
    return parse_order(body)
