"""helm test: place an order through the webapp's JSON API and follow it as far as the
enabled components take it (delivered, when every component is enabled).

Standard library only; runs with the webapp image's python3.
Env: WEBAPP_URL (http://<webapp service>:<port>), TIMEOUT_SECONDS, EXPECT_STATUS (the
status the order ends in: 100, 200, 300 or 400; "placed" = only place it).
"""

import http.cookiejar
import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE = os.environ["WEBAPP_URL"].rstrip("/")
DEADLINE = time.monotonic() + float(os.environ.get("TIMEOUT_SECONDS", "300"))
EXPECT = os.environ.get("EXPECT_STATUS", "400")

opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"raw": text[:200]}


def retry(what, fn, ok):
    """Call fn until ok(result) or the deadline; the shop may still be warming up."""
    delay = 1.0
    while True:
        try:
            result = fn()
            if ok(result):
                return result
            print(f"{what}: {result}", flush=True)
        except (urllib.error.URLError, OSError) as exc:
            print(f"{what}: {exc}", flush=True)
        if time.monotonic() + delay > DEADLINE:
            sys.exit(f"FAIL: {what} did not succeed in time")
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def main():
    print(f"webapp at {BASE}", flush=True)
    status, body = retry("login", lambda: call("POST", "/api/login", {"username": "helm-test"}), lambda r: r[0] == 200)
    print(f"logged in as {body.get('username')} ({body.get('customer_id')})", flush=True)
    order = {
        "sauce": "Tomato",
        "cheese": "Mozzarella",
        "main_topping": "Pepperoni",
        "extra_toppings": ["Mushroom", "Onion"],
    }
    status, body = retry("order", lambda: call("POST", "/api/orders", order), lambda r: r[0] == 201)
    order_id = body["order_id"]
    print(f"order {order_id} placed", flush=True)
    if EXPECT == "placed":
        print("PASS: the order was placed (no status component to follow it)", flush=True)
        return 0
    expected = int(EXPECT)
    last = None
    while True:
        status, body = call("GET", f"/api/orders/{order_id}")
        current = body.get("status") if status == 200 else f"HTTP {status}"
        if current != last:
            print(f"order {order_id}: {current} {body.get('status_text', '')}".rstrip(), flush=True)
            last = current
        if current == expected:
            print(f"PASS: the order reached status {expected} {body.get('status_text', '')}".rstrip(), flush=True)
            return 0
        if isinstance(current, int) and current < 0:
            sys.exit(f"FAIL: order failed with status {current}")
        if time.monotonic() > DEADLINE:
            sys.exit(f"FAIL: order {order_id} did not reach status {expected} in time (last status {current})")
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
