"""The benchmarks still run end to end: `python -m benchmarks --quick`, every row printed.

A real run (its own broker, the services as processes); no timing is asserted,
as the project's rule says: numbers are printed and read by people.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROWS = [
    "burst, this project, 1 replica per service",
    "burst, this project, 2 replicas per service",
    "burst, bare transactional relay",
    "burst, naive loop (flush + commit per message)",
    "one at a time, this project, 1 replica per service",
    "one at a time, this project, 2 replicas per service",
    "CPU ms per order, this project, 1 replica per service",
    "CPU ms per order, bare transactional relay",
    "Paced orders",
    "The reference rate (the first above) between the steps",
    "Peak RSS per process",
    "ours / bare transactional relay: ",
    "ours / naive loop (flush + commit per message): ",
    "webapp POST /api/orders",
    "webapp GET /api/orders/<id>",
    "status rebuild, 50 orders written",
    "status rebuild, 50 orders written, LOG_LEVEL=WARNING",
    "produce + ack (EventProducer.send)",
    "transaction: begin..commit, 2 events + offsets",
    "commit -> visible to a read_committed consumer",
    "machine: ",
    "Kafka ",
]


def test_quick_run_prints_every_row(tmp_path):
    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(repo)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--log-dir", str(tmp_path / "logs")],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-4000:]}\n{proc.stderr[-4000:]}"
    missing = [row for row in ROWS if row not in out]
    assert not missing, f"rows missing from the output: {missing}\n{out}"
    assert "errors: none" in out, out
