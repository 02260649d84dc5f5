"""pizza-loadgen against the real shop: the five services as processes on the session's broker
(as `make run` starts them, with a fast kitchen), Locust's customers for a few seconds.
Every customer's order is placed and delivered, and nothing fails."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FAST_KITCHEN = "0.02"
RUN_SECONDS = 12
KITCHEN = ("assemble", "bake", "delivery")


def start_shop(service_process) -> dict:
    kitchen = {"KITCHEN_TIME_SCALE": FAST_KITCHEN}
    procs = {name: service_process(f"pizza-{name}", name=name, env=kitchen) for name in ("status", *KITCHEN)}
    procs["webapp"] = service_process(
        "pizza-webapp", name="webapp", env={"STATUS_URL": procs["status"].api_url(""), "WEB_CONCURRENCY": "2"}
    )
    return procs


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "LOADGEN_"))}


def read_stats(prefix: Path) -> dict[tuple[str, str], dict]:
    with open(f"{prefix}_stats.csv", newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


def test_customers_order_and_get_every_pizza_delivered(service_process, tmp_path):
    shop = start_shop(service_process)
    prefix = tmp_path / "run"
    loadgen = Path(sys.executable).with_name("pizza-loadgen")
    proc = subprocess.run(
        [
            str(loadgen),
            "--users=4",
            "--spawn-rate=4",
            f"--run-time={RUN_SECONDS}s",
            "--think-min=0.05",
            "--think-max=0.2",
            "--poll-interval=0.1",
            f"--csv={prefix}",
        ],
        env={**clean_environment(), "TARGET_URL": shop["webapp"].url("")},
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS + 60,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    stats = read_stats(prefix)
    placed = stats[("POST", "/api/orders")]
    delivered = stats[("ORDER", "ordered -> delivered")]
    assert int(placed["Request Count"]) >= 1, output
    assert int(delivered["Request Count"]) >= 1, output
    for (kind, name), row in stats.items():
        assert int(row["Failure Count"]) == 0, f"{kind} {name} failed:\n{output}"
    # Progress while running, then Locust's summary and the shop's line.
    assert "Response time percentiles" in output
    assert "pizza-loadgen:" in output and "delivered" in output
