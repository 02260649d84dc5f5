"""Entry-point plumbing: what every consumer service's main() does before its loop runs."""

from __future__ import annotations

from collections.abc import Callable

from kafka_common.config import check_client_config, env_number, http_port, load_client_config, run_main
from kafka_common.health import DEFAULT_STALL_AFTER_S, Health
from kafka_common.logging import configure_logging
from kafka_common.runner import ConsumerService, ProjectionRunner
from kafka_common.usage import KafkaUsage


def serve(usage: KafkaUsage, default_http_port: int, setup: Callable[[], dict],
          runner: type[ConsumerService] | type[ProjectionRunner] = ConsumerService) -> None:
    """Configure logging, validate configuration, build the service, run its loop, exit with its code.

    setup() returns the runner's keyword arguments (at least `handlers`). It runs
    after logging is configured and inside run_main, so a bad setting it reads
    ends the process with one line and exit code 2, like bad Kafka configuration.
    """

    def main() -> int:
        configure_logging(usage.component)
        config = load_client_config()
        check_client_config(config)
        health = Health(env_number("LIVENESS_STALL_SECONDS", DEFAULT_STALL_AFTER_S, float, minimum=1.0))
        loop = runner(usage, client_config=config, http_port=http_port(default_http_port), health=health, **setup())
        return loop.run()

    run_main(main)
