"""Fuzzing the JSON API (hypothesis): whatever a client sends, the answer is never a 5xx.

In-memory producer and status (conftest); bounded examples so that it stays fast.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_common.shop import menu
from pizza_webapp.app import create_app

from .conftest import FakeProducer, FakeStatus

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any JSON value, text with lone surrogates and control characters included.
TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=20,
)
MENU_WORDS = st.sampled_from([*menu.SAUCES, *menu.CHEESES, *menu.MAIN_TOPPINGS, *menu.EXTRA_TOPPINGS])
ORDERISH = st.fixed_dictionaries(
    {},
    optional={
        "sauce": MENU_WORDS | JSON,
        "cheese": MENU_WORDS | JSON,
        "main_topping": MENU_WORDS | JSON,
        "extra_toppings": st.lists(MENU_WORDS | TEXT, max_size=8) | JSON,
    },
) | st.dictionaries(TEXT, JSON, max_size=4)
BODY = (
    JSON.map(lambda v: json.dumps(v).encode())
    | ORDERISH.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
)
CONTENT_TYPE = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
        "application/json; charset=latin-1",
    ]
)


def shop(max_open: int = 3):
    app = create_app(producer_factory=FakeProducer, status=FakeStatus(), secret_key="fuzz", max_open_orders=max_open)
    client = app.test_client()
    assert client.post("/api/login", json={"username": "fuzzer"}).status_code == 200
    return client


CLIENT = shop()


@FUZZ
@given(path=st.sampled_from(["/api/login", "/api/logout", "/api/orders"]), body=BODY, content_type=CONTENT_TYPE)
def test_posts_never_answer_5xx(path, body, content_type):
    response = CLIENT.post(path, data=body, headers={"Content-Type": content_type} if content_type else {})
    assert response.status_code < 500, (response.status_code, response.get_data())
    assert "error" in response.get_json() or response.status_code in (200, 201)
    if path == "/api/logout" and response.status_code == 200:
        CLIENT.post("/api/login", json={"username": "fuzzer"})


@FUZZ
@given(order=ORDERISH)
def test_orders_are_201_400_or_429_and_nothing_else(order):
    response = CLIENT.post("/api/orders", json=order)
    assert response.status_code in (201, 400, 429), response.get_json()


@FUZZ
@given(
    order_id=st.text(max_size=40).filter(lambda s: "/" not in s and s not in (".", "..")),
    method=st.sampled_from(["GET", "DELETE", "PUT", "PATCH"]),
)
def test_order_reads_never_answer_5xx(order_id, method):
    response = CLIENT.open("/api/orders/" + order_id, method=method)
    assert response.status_code < 500, response.get_data()


@FUZZ
@given(username=TEXT)
def test_logins_never_answer_5xx(username):
    response = CLIENT.post("/api/login", json={"username": username})
    assert response.status_code in (200, 400), response.get_json()
