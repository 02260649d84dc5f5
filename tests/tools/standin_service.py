"""A stand-in for a shop service in the launcher's tests: serves /readyz on HTTP_PORT, handles SIGTERM.

python standin_service.py NAME [--ignore-sigterm] [--crash CODE]
"""

import argparse
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--crash", type=int, default=None)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["HTTP_PORT"])), Handler)
    stop = threading.Event()

    def on_term(signum, frame):
        print(
            f"{args.name}: SIGTERM received" + (", ignoring it" if args.ignore_sigterm else ", shutting down"),
            flush=True,
        )
        if not args.ignore_sigterm:
            stop.set()

    signal.signal(signal.SIGTERM, on_term)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    if os.environ.get("READY_FILE"):  # tells another stand-in that this one handles SIGTERM now
        Path(os.environ["READY_FILE"]).touch()
    print(
        f"{args.name}: serving on {os.environ['HTTP_PORT']} with "
        f"KAFKA_BOOTSTRAP_SERVERS={os.environ.get('KAFKA_BOOTSTRAP_SERVERS')} "
        f"STATUS_URL={os.environ.get('STATUS_URL')}",
        flush=True,
    )
    if args.crash is not None:
        awaited = os.environ.get("AWAIT_FILE")  # crash only once that stand-in is up
        deadline = time.monotonic() + 30
        while awaited and not Path(awaited).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        print(f"{args.name}: crashing with code {args.crash}", flush=True)
        return args.crash
    stop.wait()
    server.shutdown()
    print(f"{args.name}: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
