"""pizza-loadgen: Locust, headless, with the shop's customers, against TARGET_URL.

Every Locust option works (pizza-loadgen --help lists them), as flags or as
LOCUST_* environment variables: --users/LOCUST_USERS, --spawn-rate/
LOCUST_SPAWN_RATE, --run-time/LOCUST_RUN_TIME, --host/LOCUST_HOST... The
defaults set here are environment defaults, so the environment and flags both
override them. The shop is TARGET_URL (default: the local shop of `make run`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Locust patches the standard library for gevent on import: before anything else.
import locust.main

LOCAL_SHOP = "http://127.0.0.1:8000"
# Loaded by Locust itself (not imported here: its listeners would register twice).
LOCUSTFILE = Path(__file__).with_name("customers.py")
DEFAULTS = {
    "LOCUST_LOCUSTFILE": str(LOCUSTFILE),
    "LOCUST_HEADLESS": "true",
    "LOCUST_USERS": "10",
    "LOCUST_SPAWN_RATE": "2",
}


def main(argv: list[str] | None = None) -> None:
    """Runs Locust until --run-time is over (or Ctrl-C / SIGTERM); exits 1 if any request or order failed."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("LOCUST_HOST", os.environ.get("TARGET_URL") or LOCAL_SHOP)
    if "LOG_LEVEL" in os.environ:
        os.environ.setdefault("LOCUST_LOGLEVEL", os.environ["LOG_LEVEL"].upper())
    sys.argv = ["pizza-loadgen", *(sys.argv[1:] if argv is None else argv)]
    locust.main.main()  # exits with Locust's exit code


if __name__ == "__main__":
    main()
