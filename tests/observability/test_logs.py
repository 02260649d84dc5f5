"""Container logs: one JSON object per line, with the fields DESIGN.md promises."""

import json
import subprocess
import sys

import pytest
import requests

from shop_testing.helpers import wait_until

pytestmark = pytest.mark.slow
EVERY_LINE = {"service", "level", "timestamp", "event"}
EVENT_LINE = {"order_id", "topic", "partition", "offset"}


def json_lines(proc):
    lines = [line for line in proc.log_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"{proc.name} wrote a line that is not JSON: {line!r}") from None
    return parsed


def test_every_service_writes_json_lines_with_the_event_fields(service_process):
    json_logs = {"LOG_FORMAT": "json", "KITCHEN_TIME_SCALE": "0.02"}
    procs = {
        name: service_process(f"pizza-{name}", name=name, env=json_logs)
        for name in ("status", "assemble", "bake", "delivery")
    }
    procs["webapp"] = service_process(
        "pizza-webapp", name="webapp", env={**json_logs, "STATUS_URL": procs["status"].api_url("")}
    )
    http = requests.Session()
    http.post(procs["webapp"].url("/api/login"), json={"username": "logger"}, timeout=10).raise_for_status()
    order_id = http.post(
        procs["webapp"].url("/api/orders"),
        timeout=15,
        json={"sauce": "Tomato", "cheese": "Gouda", "main_topping": "Pork"},
    ).json()["order_id"]
    wait_until(
        lambda: http.get(procs["webapp"].url(f"/api/orders/{order_id}"), timeout=10).json()["status"] == 400,
        120,
        "the order delivered",
    )
    for name, proc in procs.items():
        lines = json_lines(proc)
        for line in lines:
            assert EVERY_LINE <= line.keys(), (name, line)
            assert line["service"] == name, line
        about_the_order = [line for line in lines if line.get("order_id") == order_id]
        assert about_the_order, f"{name} logged nothing about order {order_id}"
        for line in about_the_order:
            if line["event"] in ("event received", "event produced"):
                assert EVENT_LINE <= line.keys(), (name, line)


def test_exceptions_are_structured_fields():
    script = (
        "from kafka_common.logging import configure_logging, get_logger\n"
        "configure_logging('probe', fmt='json')\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    get_logger().exception('it broke', order_id='abc')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True).stdout
    [line] = [json.loads(raw) for raw in out.splitlines()]
    assert line["event"] == "it broke" and line["order_id"] == "abc" and line["level"] == "error"
    [exc] = line["exception"]
    assert exc["exc_type"] == "ZeroDivisionError" and exc["frames"]
