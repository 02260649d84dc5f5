"""The JSON API contract: status codes and messages for every kind of input, with in-memory doubles."""

from __future__ import annotations

import hashlib
import io
import json
import re

import pytest
from prometheus_client import REGISTRY

from kafka_common.shop import menu
from kafka_common.shop.events import PizzaOrdered
from kafka_common.shop.status import (
    STATUS_DELIVERED,
    STATUS_IN_OVEN,
    STATUS_OUT_FOR_DELIVERY,
    STATUS_RECEIVED,
    status_text,
)
from pizza_webapp.app import create_app

SAUCES = ", ".join(menu.SAUCES)
CHEESES = ", ".join(menu.CHEESES)
MAINS = ", ".join(menu.MAIN_TOPPINGS)
EXTRAS = ", ".join(menu.EXTRA_TOPPINGS)
MALLORY = "badc0ffee0ddf00d"  # another customer's id
VALID = {"sauce": "Tomato", "cheese": "Mozzarella", "main_topping": "Pepperoni", "extra_toppings": []}


def with_(**changes):
    body = dict(VALID)
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return body


def orders_placed() -> float:
    return REGISTRY.get_sample_value("pizza_orders_placed_total", {"component": "webapp"}) or 0.0


# --- login ----------------------------------------------------------------------------------


def test_login_answers_customer_id_and_sets_a_safe_session_cookie(client):
    response = client.post("/api/login", json={"username": "alice"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["username"] == "alice"
    assert re.fullmatch(r"[0-9a-f]{32}", body["customer_id"])
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_every_login_is_a_new_customer_whatever_the_name(app, status):
    ada, impostor = app.test_client(), app.test_client()
    first = ada.post("/api/login", json={"username": "ada"}).get_json()["customer_id"]
    second = impostor.post("/api/login", json={"username": "ada"}).get_json()["customer_id"]
    assert first != second
    assert hashlib.md5(b"ada").hexdigest() not in (first, second)
    status.add("9" * 32, first, "ada")
    assert [o["order_id"] for o in ada.get("/api/orders").get_json()["orders"]] == ["9" * 32]
    assert impostor.get("/api/orders").get_json() == {"orders": []}
    assert impostor.get("/api/orders/" + "9" * 32).status_code == 404


def test_a_copied_cookie_stops_working_after_logout(app):
    browser = app.test_client()
    browser.post("/api/login", json={"username": "ada"})
    cookie = browser.get_cookie("pizza_session").value
    thief = app.test_client()
    thief.set_cookie("pizza_session", cookie)
    assert thief.get("/api/orders").status_code == 200
    assert browser.post("/api/logout", json={}).status_code == 200
    assert thief.get("/api/orders").status_code == 401
    assert thief.post("/api/orders", json=VALID).status_code == 401


def test_session_cookie_expires(client):
    cookie = client.post("/api/login", json={"username": "alice"}).headers["Set-Cookie"]
    assert "Expires=" in cookie


def test_secure_cookie_when_configured(producer, status):
    app = create_app(producer_factory=lambda: producer, status=status, secret_key="k", cookie_secure=True)
    response = app.test_client().post("/api/login", json={"username": "alice"})
    assert "Secure" in response.headers["Set-Cookie"]


def test_user_name_is_trimmed(client):
    assert client.post("/api/login", json={"username": "  dora  "}).get_json()["username"] == "dora"


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, "username is required"),
        ({"username": None}, "username is required"),
        ({"username": 42}, "username must be a string"),
        ({"username": ["alice"]}, "username must be a string"),
        ({"username": ""}, "username must not be empty"),
        ({"username": "   "}, "username must not be empty"),
        ({"username": "x" * 33}, "username must be at most 32 characters"),
        ({"username": "bob\nadmin"}, "username must not contain control characters"),
        ({"username": "bob\x00"}, "username must not contain control characters"),
        ({"username": "\x1b[31mred"}, "username must not contain control characters"),
        ({"username": "evil\u202egnp"}, "username must not contain control characters"),
        (["alice"], "request body must be a JSON object"),
        ("alice", "request body must be a JSON object"),
    ],
)
def test_login_rejects_bad_user_names(client, body, message):
    response = client.post("/api/login", json=body)
    assert response.status_code == 400
    assert response.get_json() == {"error": message}


def test_login_accepts_32_characters(client):
    assert client.post("/api/login", json={"username": "x" * 32}).status_code == 200


def test_login_rejects_a_body_that_is_not_json(client):
    response = client.post("/api/login", data="username=alice", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "request body is not valid JSON"}


@pytest.mark.parametrize("path", ["/api/login", "/api/logout", "/api/orders"])
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp"],
)
def test_posts_without_json_content_type_get_415(client, customer, path, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(path, data=json.dumps(VALID), headers=headers)
    assert response.status_code == 415
    assert response.get_json() == {"error": "Content-Type must be application/json"}


def test_json_content_type_with_charset_is_accepted(client, customer):
    response = client.post("/api/orders", data=json.dumps(VALID), content_type="application/json; charset=utf-8")
    assert response.status_code == 201


def test_logout_ends_the_session(client, customer):
    response = client.post("/api/logout", json={})
    assert response.status_code == 200
    assert client.get("/api/orders").status_code == 401


def test_logout_accepts_an_empty_json_post(client, customer):
    assert client.post("/api/logout", content_type="application/json").status_code == 200
    assert client.get("/api/orders").status_code == 401


# --- menu -----------------------------------------------------------------------------------


def test_menu(client):
    response = client.get("/api/menu")
    assert response.status_code == 200
    assert response.get_json() == {
        "sauces": list(menu.SAUCES),
        "cheeses": list(menu.CHEESES),
        "main_toppings": list(menu.MAIN_TOPPINGS),
        "extra_toppings": list(menu.EXTRA_TOPPINGS),
    }


# --- placing orders -------------------------------------------------------------------------


def test_order_is_produced_and_confirmed_with_its_id_only(client, customer, producer, pizza):
    before = orders_placed()
    response = client.post("/api/orders", json=pizza)
    assert response.status_code == 201
    body = response.get_json()
    assert list(body) == ["order_id"]
    [event] = producer.sent
    assert isinstance(event, PizzaOrdered)
    assert event.order_id == body["order_id"]
    assert event.customer_id == customer["customer_id"]
    assert event.username == "alice"
    assert event.pizza.as_dict() == {**pizza, "extra_toppings": ["Onion", "Eggs"]}
    assert orders_placed() == before + 1
    assert response.headers["Location"] == f"/api/orders/{body['order_id']}"


def test_extra_toppings_may_be_left_out(client, customer, producer):
    assert client.post("/api/orders", json=with_(extra_toppings=...)).status_code == 201
    assert producer.sent[0].pizza.extra_toppings == ()


def test_all_six_extras(client, customer, producer):
    assert client.post("/api/orders", json=with_(extra_toppings=list(menu.EXTRA_TOPPINGS))).status_code == 201
    assert producer.sent[0].pizza.extra_toppings == menu.EXTRA_TOPPINGS


@pytest.mark.parametrize(
    "body, message",
    [
        (with_(sauce=...), "sauce is required"),
        (with_(cheese=...), "cheese is required"),
        (with_(main_topping=...), "main_topping is required"),
        (with_(sauce=None), "sauce is required"),
        (with_(sauce=1), "sauce must be a string"),
        (with_(cheese=["Gouda"]), "cheese must be a string"),
        (with_(main_topping={"name": "Pork"}), "main_topping must be a string"),
        (with_(sauce="Ketchup"), f"unknown sauce 'Ketchup'; choose one of: {SAUCES}"),
        (with_(sauce="tomato"), f"unknown sauce 'tomato'; choose one of: {SAUCES}"),
        (with_(cheese="Brie"), f"unknown cheese 'Brie'; choose one of: {CHEESES}"),
        (with_(main_topping="Pineapple"), f"unknown main topping 'Pineapple'; choose one of: {MAINS}"),
        (with_(extra_toppings="Onion"), "extra_toppings must be a list"),
        (with_(extra_toppings={"Onion": True}), "extra_toppings must be a list"),
        (with_(extra_toppings=["Onion", 3]), "extra_toppings must be a list of strings"),
        (with_(extra_toppings=["Pineapple"]), f"unknown extra topping 'Pineapple'; choose from: {EXTRAS}"),
        (with_(extra_toppings=["Onion", "Onion"]), "extra topping 'Onion' is listed more than once"),
        (with_(extra_toppings=[*menu.EXTRA_TOPPINGS, "Onion"]), "at most 6 extra toppings, got 7"),
        (with_(size="XL"), "unexpected field 'size'; an order has sauce, cheese, main_topping, extra_toppings"),
        ([VALID], "request body must be a JSON object"),
        ("pizza", "request body must be a JSON object"),
    ],
)
def test_invalid_orders_get_400_with_what_is_wrong(client, customer, producer, body, message):
    response = client.post("/api/orders", json=body)
    assert response.status_code == 400
    assert response.get_json() == {"error": message}
    assert producer.sent == []


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{not json", "request body is not valid JSON"),
        ("", "request body is empty; send a JSON object"),
        ("\xff\xfe{", "request body is not valid JSON"),
        ("null", "request body must be a JSON object"),
        ("[" * 7000 + "]" * 7000, "request body is not valid JSON"),
    ],
)
def test_order_body_that_is_not_json_gets_400(client, customer, producer, raw, message):
    data = raw.encode("latin-1")
    response = client.post("/api/orders", data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": message}
    assert producer.sent == []


def test_oversized_body_is_refused_not_crashed_on(client, customer, producer):
    response = client.post(
        "/api/orders", data=b" " * 20000 + json.dumps(VALID).encode(), content_type="application/json"
    )
    assert response.status_code == 413
    assert "error" in response.get_json()
    assert producer.sent == []


def test_order_needs_a_login(client, producer):
    response = client.post("/api/orders", json=VALID)
    assert response.status_code == 401
    assert response.get_json() == {"error": "not logged in: POST /api/login first"}
    assert producer.sent == []


def test_order_gets_503_when_kafka_does_not_acknowledge(client, customer, producer, status):
    producer.fail_with = "Local: Message timed out"
    before = orders_placed()
    response = client.post("/api/orders", json=VALID)
    assert response.status_code == 503
    assert "Kafka" in response.get_json()["error"]
    assert list(response.get_json()) == ["error"]
    assert orders_placed() == before
    # Nothing half-written: the failed order is not shown as pending either.
    assert client.get("/api/orders").get_json() == {"orders": []}


def test_unknown_json_api_path_and_method_answer_json(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert "error" in response.get_json()
    response = client.delete("/api/orders")
    assert response.status_code == 405
    assert "error" in response.get_json()


# --- reading orders -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/orders", "/api/orders/" + "a" * 32])
def test_reads_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.get_json() == {"error": "not logged in: POST /api/login first"}


def test_my_orders_newest_first_and_only_mine(client, customer, status):
    status.add("1" * 32, customer["customer_id"], ordered_at="2026-01-01T12:00:00Z")
    status.add("2" * 32, customer["customer_id"], status=STATUS_DELIVERED, ordered_at="2026-01-01T12:05:00Z")
    status.add("3" * 32, MALLORY, "mallory", ordered_at="2026-01-01T12:10:00Z")
    response = client.get("/api/orders")
    assert response.status_code == 200
    orders = response.get_json()["orders"]
    assert [o["order_id"] for o in orders] == ["2" * 32, "1" * 32]
    assert orders[0] == {
        "order_id": "2" * 32,
        "status": 400,
        "status_text": "Your pizza was delivered",
        "order": {"sauce": "Tomato", "cheese": "Mozzarella", "main_topping": "Pepperoni", "extra_toppings": []},
        "ordered_at": "2026-01-01T12:05:00Z",
        "updated_at": "2026-01-01T12:05:00Z",
    }


def test_order_detail_with_events(client, customer, status):
    events = [
        {"status": 100, "status_text": status_text(100), "at": "2026-01-01T12:00:00Z"},
        {"status": 200, "status_text": status_text(200), "at": "2026-01-01T12:00:04Z"},
    ]
    status.add("4" * 32, customer["customer_id"], status=200, events=events)
    response = client.get("/api/orders/" + "4" * 32)
    assert response.status_code == 200
    body = response.get_json()
    assert {"order_id", "status", "status_text", "order", "events"} <= set(body)
    assert "customer_id" not in body and "username" not in body
    assert body["status"] == 200
    assert body["status_text"] == "Your pizza is in the oven"
    assert body["events"] == events


def test_another_customers_order_is_404(client, customer, status):
    status.add("5" * 32, MALLORY, "mallory")
    response = client.get("/api/orders/" + "5" * 32)
    assert response.status_code == 404
    assert response.get_json() == {"error": "no such order"}


def test_unknown_order_is_404(client, customer, status):
    assert client.get("/api/orders/" + "6" * 32).status_code == 404


@pytest.mark.parametrize("order_id", ["nope", "../orders", "A" * 32, "a" * 33, "%00"])
def test_malformed_order_id_is_404_without_asking_status(client, customer, status, order_id):
    response = client.get("/api/orders/" + order_id)
    assert response.status_code == 404
    assert not [c for c in status.calls if c[0] == "order"]


def test_read_your_writes_wait_for_and_pending_order(client, customer, status, pizza):
    order_id = client.post("/api/orders", json=pizza).get_json()["order_id"]
    # The read model has not applied the event yet: the customer still sees the order, as received.
    listed = client.get("/api/orders").get_json()["orders"]
    assert [o["order_id"] for o in listed] == [order_id]
    assert listed[0]["status"] == 100
    assert listed[0]["order"] == pizza
    detail = client.get(f"/api/orders/{order_id}")
    assert detail.status_code == 200
    assert detail.get_json()["status_text"] == "Order received and being prepared"
    assert [e["status"] for e in detail.get_json()["events"]] == [100]
    # The open-order cap asked first; each read then named the position of the acknowledged record.
    assert status.calls == [
        ("orders", customer["customer_id"], None),
        ("orders", customer["customer_id"], "3:40"),
        ("order", order_id, "3:40"),
    ]
    # Once status has it, status's answer wins.
    status.add(order_id, customer["customer_id"], status=300)
    assert client.get(f"/api/orders/{order_id}").get_json()["status"] == 300
    assert [o["status"] for o in client.get("/api/orders").get_json()["orders"]] == [300]


def test_latest_position_is_the_one_passed_on(client, customer, status):
    client.post("/api/orders", json=VALID)
    client.post("/api/orders", json=VALID)
    client.get("/api/orders")
    assert status.calls[-1][2] == "3:41"


def test_status_down_reads_503_ordering_still_works(client, customer, status, producer):
    status.down = True
    response = client.get("/api/orders")
    assert response.status_code == 503
    assert response.get_json() == {"error": "order status is temporarily unavailable, please try again shortly"}
    assert client.get("/api/orders/" + "7" * 32).status_code == 503
    placed = client.post("/api/orders", json=VALID)
    assert placed.status_code == 201
    assert len(producer.sent) == 1


def test_api_responses_are_not_cached(client, customer):
    assert client.get("/api/orders").headers["Cache-Control"] == "no-store"


# --- probes ---------------------------------------------------------------------------------


def test_liveness(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_readiness_does_not_depend_on_kafka_or_status(producer, status):
    producer.reachable = False
    status.down = True
    app = create_app(producer_factory=lambda: producer, status=status, secret_key="k")
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert producer.reachable_calls == 0


def test_readiness_survives_a_producer_that_cannot_be_created(status, pizza):
    def broken():
        raise RuntimeError("no producer")

    client = create_app(producer_factory=broken, status=status, secret_key="k").test_client()
    assert client.get("/readyz").status_code == 200
    client.post("/api/login", json={"username": "alice"})
    response = client.post("/api/orders", json=pizza)
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal error"}


def test_metrics_endpoint(client, customer):
    client.post("/api/orders", json=VALID)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"pizza_orders_placed_total" in response.data
    assert b'route="/api/orders"' in response.data


def test_pending_order_is_only_vouched_for_a_while(client, customer, status, monkeypatch):
    from pizza_webapp import orders as webapp

    order_id = client.post("/api/orders", json=VALID).get_json()["order_id"]
    assert client.get(f"/api/orders/{order_id}").status_code == 200
    monkeypatch.setattr(webapp, "PENDING_GRACE_S", -1.0)
    assert client.get(f"/api/orders/{order_id}").status_code == 404
    assert client.get("/api/orders").get_json() == {"orders": []}


# --- hostile input --------------------------------------------------------------------------


def test_a_lone_surrogate_in_a_user_name_is_a_400(client):
    response = client.post("/api/login", data=b'{"username": "\\ud800"}', content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "username must be valid Unicode text"}


def test_a_lone_surrogate_in_an_order_is_a_400(client, customer, producer):
    response = client.post(
        "/api/orders",
        data=b'{"sauce": "\\udfff", "cheese": "Gouda", "main_topping": "Pork"}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("unknown sauce")
    assert producer.sent == []


class UnreadableBody(io.BytesIO):
    """A request body whose reading fails as gunicorn's does on a malformed chunk size."""

    def read(self, *args):
        raise ValueError("Invalid chunk size: zz")


@pytest.mark.parametrize(
    "path, content_type",
    [("/api/login", "application/json"), ("/api/logout", "application/json"), ("/api/orders", "application/json")],
)
def test_a_body_that_cannot_be_read_is_a_json_400(client, customer, producer, path, content_type):
    response = client.post(
        path, input_stream=UnreadableBody(), headers={"Transfer-Encoding": "chunked", "Content-Type": content_type}
    )
    assert response.status_code == 400
    assert response.get_json() == {"error": "the request body could not be read: ValueError"}
    assert producer.sent == []


@pytest.mark.parametrize("path", ["/login", "/logout", "/order"])
def test_a_form_body_that_cannot_be_read_is_a_400_page(client, customer, path):
    response = client.post(
        path,
        input_stream=UnreadableBody(),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert "<!doctype html>" in response.get_data(as_text=True)
    assert "the request body could not be read" in response.get_data(as_text=True)


# --- the open-order cap ---------------------------------------------------------------------


def cap_app(producer, status, limit):
    app = create_app(producer_factory=lambda: producer, status=status, secret_key="k", max_open_orders=limit)
    client = app.test_client()
    customer_id = client.post("/api/login", json={"username": "greedy"}).get_json()["customer_id"]
    return client, customer_id


def test_open_orders_are_capped_per_customer(producer, status):
    client, me = cap_app(producer, status, 3)
    placed = [client.post("/api/orders", json=VALID) for _ in range(3)]
    assert [r.status_code for r in placed] == [201, 201, 201]
    refused = client.post("/api/orders", json=VALID)
    assert refused.status_code == 429
    assert refused.get_json() == {
        "error": "you already have 3 pizzas on their way; please wait until one is delivered before ordering more"
    }
    assert len(producer.sent) == 3
    # Someone else is not affected.
    other = client.application.test_client()
    other.post("/api/login", json={"username": "patient"})
    assert other.post("/api/orders", json=VALID).status_code == 201
    # Once status shows one delivered (and one failed), two more may be ordered.
    first, second, third = (r.get_json()["order_id"] for r in placed)
    status.add(first, me, status=STATUS_DELIVERED)
    status.add(second, me, status=-100)
    status.add(third, me, status=STATUS_IN_OVEN)
    assert [client.post("/api/orders", json=VALID).status_code for _ in range(3)] == [201, 201, 429]


def test_the_cap_counts_the_read_model_too(producer, status):
    client, me = cap_app(producer, status, 2)
    status.add("a" * 32, me, status=STATUS_RECEIVED)
    status.add("b" * 32, me, status=STATUS_OUT_FOR_DELIVERY)
    assert client.post("/api/orders", json=VALID).status_code == 429


def test_the_cap_still_holds_while_status_is_down(producer, status):
    client, _ = cap_app(producer, status, 2)
    status.down = True
    assert [client.post("/api/orders", json=VALID).status_code for _ in range(3)] == [201, 201, 429]


def test_cap_zero_means_no_cap(producer, status):
    client, _ = cap_app(producer, status, 0)
    assert {client.post("/api/orders", json=VALID).status_code for _ in range(8)} == {201}
    assert not [c for c in status.calls if c[0] == "orders"]


def test_the_order_form_says_why_it_was_refused(producer, status):
    import re as regex

    client, _ = cap_app(producer, status, 1)
    assert client.post("/api/orders", json=VALID).status_code == 201
    token = regex.search(r'name="csrf_token" value="([^"]+)"', client.get("/menu").get_data(as_text=True)).group(1)
    response = client.post("/order", data={**VALID, "extra_toppings": [], "csrf_token": token})
    assert response.status_code == 429
    assert "you already have 1 pizzas on their way" in response.get_data(as_text=True)


def test_the_openapi_description_covers_every_api_route(app, client):
    import yaml

    response = client.get("/api/openapi.yaml")
    assert response.status_code == 200
    spec = yaml.safe_load(response.get_data(as_text=True))
    described = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    served = {
        (rule.rule.replace("<order_id>", "{order_id}"), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") and rule.rule != "/api/openapi.yaml"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert described == served
