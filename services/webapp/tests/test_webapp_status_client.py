"""StatusClient against a stand-in status service over real HTTP: parameters, 404, outages, timeouts."""

from __future__ import annotations

import threading

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from pizza_webapp.status_client import StatusClient, StatusUnavailable

ORDER = {
    "order_id": "a" * 32,
    "customer_id": "abc",
    "username": "alice",
    "status": 100,
    "status_text": "Order received and being prepared",
    "order": {"sauce": "Tomato", "cheese": "Gouda", "main_topping": "Pork", "extra_toppings": []},
    "ordered_at": "2026-01-01T12:00:00Z",
    "updated_at": "2026-01-01T12:00:00Z",
    "events": [],
}


class StandIn:
    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        self.mode = "ok"
        self.release = threading.Event()
        app = Flask("status-stand-in")

        @app.get("/api/orders")
        def orders():
            self.requests.append((request.path, dict(request.args)))
            return self._answer(lambda: jsonify(orders=[ORDER]))

        @app.get("/api/orders/<order_id>")
        def order(order_id):
            self.requests.append((request.path, dict(request.args)))
            if order_id != ORDER["order_id"]:
                return jsonify(error="no such order"), 404
            return self._answer(lambda: jsonify(ORDER))

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _answer(self, ok):
        if self.mode == "error":
            return jsonify(error="boom"), 500
        if self.mode == "garbage":
            return "<html>proxy error</html>", 200
        if self.mode == "wrong-shape":
            return jsonify(orders={"not": "a list"}, order_id=None)
        if self.mode == "hang":
            self.release.wait(10)
        return ok()


@pytest.fixture
def stand_in():
    server = StandIn()
    server.thread.start()
    yield server
    server.release.set()
    server.server.shutdown()


def test_orders_by_customer_with_wait_for(stand_in):
    client = StatusClient(stand_in.url)
    assert client.orders("abc", wait_for="2:17") == [ORDER]
    assert stand_in.requests == [("/api/orders", {"customer_id": "abc", "wait_for": "2:17"})]


def test_order_without_wait_for(stand_in):
    client = StatusClient(stand_in.url + "/")
    assert client.order("a" * 32) == ORDER
    assert stand_in.requests == [("/api/orders/" + "a" * 32, {})]


def test_unknown_order_is_none(stand_in):
    assert StatusClient(stand_in.url).order("b" * 32, wait_for="0:1") is None
    assert stand_in.requests == [("/api/orders/" + "b" * 32, {"wait_for": "0:1"})]


@pytest.mark.parametrize("mode", ["error", "garbage", "wrong-shape"])
def test_bad_answers_mean_unavailable(stand_in, mode):
    stand_in.mode = mode
    client = StatusClient(stand_in.url)
    with pytest.raises(StatusUnavailable):
        client.orders("abc")
    if mode != "wrong-shape":
        with pytest.raises(StatusUnavailable):
            client.order("a" * 32)


def test_slow_status_times_out(stand_in):
    stand_in.mode = "hang"
    client = StatusClient(stand_in.url, read_timeout=0.2, wait_read_timeout=0.3)
    with pytest.raises(StatusUnavailable):
        client.orders("abc")
    with pytest.raises(StatusUnavailable):
        client.order("a" * 32, wait_for="1:1")


def test_nobody_listening_means_unavailable():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StatusUnavailable):
        StatusClient(f"http://127.0.0.1:{port}").orders("abc")
