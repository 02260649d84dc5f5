"""Server-rendered pages: forms with CSRF tokens, escaping, status outages, ownership."""

from __future__ import annotations

import re

import pytest

from kafka_common.shop import menu
from kafka_common.shop.status import status_text
from pizza_webapp.app import create_app
from pizza_webapp.status_client import StatusClient

MALLORY = "badc0ffee0ddf00d"  # another customer's id
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client, path: str = "/login") -> str:
    page = client.get(path)
    assert page.status_code == 200
    match = TOKEN.search(page.get_data(as_text=True))
    assert match, "form without a CSRF token"
    return match.group(1)


def form_login(client, username: str = "alice"):
    return client.post("/login", data={"username": username, "csrf_token": csrf(client)})


def order_form(client, **fields):
    data = {
        "sauce": "Marinara",
        "cheese": "Ricotta",
        "main_topping": "Sausage",
        "extra_toppings": ["Mushroom", "Fresh garlic"],
        **fields,
    }
    data = {k: v for k, v in data.items() if v is not None}
    data.setdefault("csrf_token", csrf(client, "/menu"))
    return client.post("/order", data=data)


@pytest.fixture
def shopper(client):
    assert form_login(client).status_code == 303
    return client


def customer_id_of(client) -> str:
    with client.session_transaction() as session:
        return session["customer_id"]


def text(response) -> str:
    return response.get_data(as_text=True)


def test_home_sends_newcomers_to_login_and_customers_to_the_menu(client):
    assert client.get("/").headers["Location"].endswith("/login")
    form_login(client)
    assert client.get("/").headers["Location"].endswith("/menu")


@pytest.mark.parametrize("path", ["/menu", "/orders", "/orders/" + "a" * 32, "/orders/" + "a" * 32 + "/confirmation"])
def test_pages_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/login")


def test_login_form_logs_in(client):
    response = form_login(client, "alice")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/menu")
    assert "alice" in text(client.get("/menu"))


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_login_form_without_the_right_csrf_token_is_rejected(client, token):
    csrf(client)  # the session has a token; the form does not carry it
    data = {"username": "alice"}
    if token is not None:
        data["csrf_token"] = token
    response = client.post("/login", data=data)
    assert response.status_code == 400
    assert "did not come from this shop" in text(response)
    assert client.get("/menu").status_code == 303  # still logged out


def test_login_form_shows_what_is_wrong(client):
    response = client.post("/login", data={"username": "x" * 40, "csrf_token": csrf(client)})
    assert response.status_code == 400
    assert "username must be at most 32 characters" in text(response)


def test_menu_offers_every_option(shopper):
    page = text(shopper.get("/menu"))
    for field, options in (("sauce", menu.SAUCES), ("cheese", menu.CHEESES), ("main_topping", menu.MAIN_TOPPINGS)):
        for option in options:
            assert f'type="radio" name="{field}" value="{option}"' in page
    for option in menu.EXTRA_TOPPINGS:
        assert f'type="checkbox" name="extra_toppings" value="{option}"' in page


def test_ordering_through_the_form(shopper, producer):
    response = order_form(shopper)
    assert response.status_code == 303
    [event] = producer.sent
    assert response.headers["Location"].endswith(f"/orders/{event.order_id}/confirmation")
    assert event.pizza.extra_toppings == ("Mushroom", "Fresh garlic")
    page = text(shopper.get(response.headers["Location"]))
    assert event.order_id in page
    assert "Marinara" in page and "Ricotta" in page and "Mushroom, Fresh garlic" in page
    assert f'href="/orders/{event.order_id}"' in page


def test_order_form_without_csrf_token_is_rejected(shopper, producer):
    response = order_form(shopper, csrf_token="stolen?")
    assert response.status_code == 400
    assert producer.sent == []


def test_order_form_from_another_session_is_rejected(app, shopper, producer):
    other = app.test_client()
    form_login(other, "mallory")
    response = order_form(shopper, csrf_token=csrf(other, "/menu"))
    assert response.status_code == 400
    assert producer.sent == []


def test_order_form_shows_what_is_wrong_and_keeps_the_choices(shopper, producer):
    response = order_form(shopper, sauce="Ketchup")
    assert response.status_code == 400
    page = re.sub(r"\s+", " ", text(response))
    assert "unknown sauce &#39;Ketchup&#39;" in page
    assert 'value="Ricotta" checked' in page
    assert 'value="Mushroom" checked' in page
    assert 'value="Onion" >' in page  # not chosen, not checked
    assert producer.sent == []


def test_order_form_missing_choice(shopper, producer):
    response = order_form(shopper, cheese=None)
    assert response.status_code == 400
    assert "cheese is required" in text(response)
    assert producer.sent == []


def test_order_form_when_kafka_is_down(shopper, producer):
    producer.fail_with = "Local: Message timed out"
    response = order_form(shopper)
    assert response.status_code == 503
    assert "the kitchen cannot take orders right now" in text(response)


def test_malicious_user_name_is_escaped_everywhere(client, status, producer):
    evil = "<script>alert('x')</script>"
    assert form_login(client, evil).status_code == 303
    response = order_form(client)
    order_id = producer.sent[0].order_id
    assert producer.sent[0].username == evil
    for path in ("/menu", "/orders", f"/orders/{order_id}", response.headers["Location"]):
        page = text(client.get(path))
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page


def test_status_text_from_the_read_model_is_escaped(shopper, status):
    order = status.add("b" * 32, customer_id_of(shopper))
    order["status_text"] = "<img src=x onerror=alert(1)>"
    page = text(shopper.get("/orders/" + "b" * 32))
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_order_page_shows_status_and_timeline(shopper, status):
    events = [
        {"status": 100, "status_text": status_text(100), "at": "2026-01-01T12:00:00Z"},
        {"status": 200, "status_text": status_text(200), "at": "2026-01-01T12:00:04Z"},
        {"status": 300, "status_text": status_text(300), "at": "2026-01-01T12:00:16Z"},
        {"status": 400, "status_text": status_text(400), "at": "2026-01-01T12:00:25Z"},
    ]
    status.add("c" * 32, customer_id_of(shopper), status=400, events=events)
    response = shopper.get("/orders/" + "c" * 32)
    assert response.status_code == 200
    page = text(response)
    assert 'id="status-text" aria-live="polite">Your pizza was delivered</p>' in page
    for at, clock in (("12:00:00Z", "12:00:00 UTC"), ("12:00:25Z", "12:00:25 UTC")):
        assert f'<time datetime="2026-01-01T{at}" class="js-local-time">{clock}</time>' in page
    assert page.count('class="done"') == 4
    assert 'data-order-url="/api/orders/' + "c" * 32 + '"' in page
    assert "/static/order.js" in page


def test_my_orders_page(shopper, status):
    status.add("d" * 32, customer_id_of(shopper), status=300)
    status.add("e" * 32, MALLORY, "mallory")
    page = text(shopper.get("/orders"))
    assert "/orders/" + "d" * 32 in page
    assert "Your pizza is out for delivery" in page
    assert "e" * 32 not in page


def test_another_customers_order_page_is_404(shopper, status):
    status.add("f" * 32, MALLORY, "mallory")
    response = shopper.get("/orders/" + "f" * 32)
    assert response.status_code == 404
    assert "We could not find that order" in text(response)


def test_just_placed_order_shows_before_status_has_it(shopper, producer):
    order_form(shopper)
    order_id = producer.sent[0].order_id
    response = shopper.get(f"/orders/{order_id}")
    assert response.status_code == 200
    assert "Order received and being prepared" in text(response)
    assert order_id in text(shopper.get("/orders"))


@pytest.fixture
def unreachable_status(producer, unused_port):
    app = create_app(
        producer_factory=lambda: producer, status=StatusClient(f"http://127.0.0.1:{unused_port}"), secret_key="k"
    )
    return app.test_client()


@pytest.fixture
def unused_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_status_down_pages_say_unavailable_and_ordering_still_works(unreachable_status, producer):
    client = unreachable_status
    form_login(client)
    orders = client.get("/orders")
    assert orders.status_code == 503
    assert "Order status is temporarily unavailable" in text(orders)
    detail = client.get("/orders/" + "a" * 32)
    assert detail.status_code == 503
    assert "Order status is temporarily unavailable" in text(detail)
    assert 'id="status-unavailable" role="alert">' in text(detail)

    placed = order_form(client)
    assert placed.status_code == 303
    order_id = producer.sent[0].order_id
    confirmation = client.get(placed.headers["Location"])
    assert confirmation.status_code == 200
    assert order_id in text(confirmation)
    # The order page still shows what was ordered, with the outage notice.
    page = text(client.get(f"/orders/{order_id}"))
    assert "Order status is temporarily unavailable" in page
    assert "Marinara" in page
    assert client.get("/api/orders").status_code == 503


def test_logout_form(shopper):
    response = shopper.post("/logout", data={"csrf_token": csrf(shopper, "/menu")})
    assert response.status_code == 303
    assert shopper.get("/menu").status_code == 303


def test_logout_form_needs_csrf(shopper):
    assert shopper.post("/logout", data={}).status_code == 400
    assert shopper.get("/menu").status_code == 200


def test_pages_carry_security_headers(client):
    response = client.get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("asset", ["shop.css", "order.js", "pizza.svg"])
def test_static_assets_are_served_locally(client, asset):
    response = client.get(f"/static/{asset}")
    assert response.status_code == 200
    response.close()


def test_no_external_resources_in_pages(shopper, status):
    status.add("c" * 32, customer_id_of(shopper))
    for path in ("/login", "/menu", "/orders", "/orders/" + "c" * 32):
        page = text(shopper.get(path))
        assert not re.search(r'(src|href)="(https?:)?//', page), path


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "<!doctype html>" in text(response)
