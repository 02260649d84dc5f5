"""Reads go to the status service (the query side) over HTTP, with short timeouts.

Contract (status service):
  GET {STATUS_URL}/api/orders?customer_id=<hex>[&wait_for=<partition>:<offset>]
      -> 200 {"orders": [order, ...]} newest first
  GET {STATUS_URL}/api/orders/<order_id>[?wait_for=<partition>:<offset>]
      -> 200 order + "events": [{"status", "status_text", "at"}, ...]  |  404 {"error"}
  order = {"order_id", "customer_id", "username", "status", "status_text",
           "order": {"sauce", "cheese", "main_topping", "extra_toppings"}, "ordered_at", "updated_at"}
wait_for names the pizza-ordered record this webapp produced; status answers once
its read model applied it (or after its own bound of about 3 s).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from urllib.parse import quote

from kafka_common.logging import get_logger

if TYPE_CHECKING:
    import requests


STATUS_CONNECTIONS = 32


class StatusUnavailable(Exception):
    """The status service did not answer usefully; the page says so, the API answers 503."""


class StatusClient:
    def __init__(
        self, base_url: str, connect_timeout: float = 1.0, read_timeout: float = 2.0, wait_read_timeout: float = 4.5
    ):
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        # With wait_for, status may hold the answer for its own bound (~3 s) first.
        self.wait_read_timeout = wait_read_timeout
        self._local = threading.local()
        self._log = get_logger("status-client")

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            # requests (and ssl through urllib3) is imported in the worker, after gevent patched
            # ssl: the gunicorn master never imports it.
            import requests
            from requests.adapters import HTTPAdapter

            session = self._local.session = requests.Session()
            # Under gevent one worker's requests share this session: keep enough connections
            # to status for concurrent reads instead of opening and dropping extra ones.
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=STATUS_CONNECTIONS)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        return session

    def _get(self, path: str, params: dict) -> requests.Response:
        import requests

        timeout = (self.connect_timeout, self.wait_read_timeout if "wait_for" in params else self.read_timeout)
        try:
            return self._session().get(self.base_url + path, params=params, timeout=timeout)
        except requests.RequestException as exc:
            self._log.warning("status service unreachable", path=path, error=str(exc))
            raise StatusUnavailable(f"status service unreachable: {type(exc).__name__}") from exc

    def _json(self, response: requests.Response, path: str) -> dict:
        try:
            body = response.json()
        except ValueError as exc:
            raise StatusUnavailable("status service answered with invalid JSON") from exc
        if not isinstance(body, dict):
            raise StatusUnavailable("status service answered with an unexpected shape")
        return body

    def orders(self, customer_id: str, wait_for: str | None = None) -> list[dict]:
        params = {"customer_id": customer_id}
        if wait_for:
            params["wait_for"] = wait_for
        path = "/api/orders"
        response = self._get(path, params)
        if response.status_code != 200:
            self._log.warning("status service error", path=path, http_status=response.status_code)
            raise StatusUnavailable(f"status service answered {response.status_code}")
        orders = self._json(response, path).get("orders")
        if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
            raise StatusUnavailable("status service answered with an unexpected shape")
        return orders

    def order(self, order_id: str, wait_for: str | None = None) -> dict | None:
        """The order with its events, or None when status does not know it."""
        params = {"wait_for": wait_for} if wait_for else {}
        path = "/api/orders/" + quote(order_id, safe="")
        response = self._get(path, params)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            self._log.warning("status service error", path=path, http_status=response.status_code)
            raise StatusUnavailable(f"status service answered {response.status_code}")
        return self._json(response, path)
