"""`make kafka`: the local Kafka broker in the foreground, with the shop's topics.

    python -m local_kafka [--port 9092] [--controller-port 9093] [--data-dir .cache/kafka-data]
                          [--show-log] [--no-topics]

The data dir is formatted on the first start only, so topics and offsets
survive restarts (`make clean` removes it). The broker's own log goes to
<data-dir>/broker.log; --show-log prints it here too. Ctrl-C (or SIGTERM)
stops the broker cleanly. Any Kafka client can use it, e.g.
`kcat -b 127.0.0.1:9092 -L`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from local_kafka.broker import DEFAULT_CONTROLLER_PORT, DEFAULT_PORT, KafkaStartError, LocalKafka, cache_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_kafka", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--controller-port", type=int, default=DEFAULT_CONTROLLER_PORT)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: .cache/kafka-data in the repository")
    parser.add_argument("--show-log", action="store_true", help="print the broker's own log here too")
    parser.add_argument("--no-topics", action="store_true", help="do not create the shop's topics")
    args = parser.parse_args(argv)

    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum, frame):
        received.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    kafka = LocalKafka(
        args.port, args.controller_port, args.data_dir or cache_dir() / "kafka-data", show_log=args.show_log
    )
    fresh = not kafka.formatted()
    print(
        f"Starting Kafka on {kafka.bootstrap} ({'new' if fresh else 'existing'} data in {kafka.data_dir}; "
        f"its log: {kafka.log_file})",
        flush=True,
    )
    try:
        kafka.start()
        print(
            f"Kafka is ready on {kafka.bootstrap} after {kafka.last_start_seconds:.1f} s "
            f"(cluster id {kafka.cluster_id})",
            flush=True,
        )
        if not args.no_topics:
            for topic, outcome in kafka.create_topics().items():
                print(f"topic {topic}: {outcome}", flush=True)
        if not stop.is_set():
            print(f"Press Ctrl-C to stop. Try: kcat -b {kafka.bootstrap} -L", flush=True)
        # Wake up for a signal, or when the broker dies on its own.
        while not stop.wait(0.5):
            if not kafka.running:
                print(
                    f"Kafka exited on its own with code {kafka.process and kafka.process.returncode}; see {kafka.log_file}",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
    except KafkaStartError as exc:
        print(f"Kafka could not start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if kafka.running:
            print(f"{received[0] if received else 'Stopping'}: stopping Kafka...", flush=True)
            kafka.stop()
            print("Kafka stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
