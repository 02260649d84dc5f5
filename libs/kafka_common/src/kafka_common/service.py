"""Entry-point plumbing: what every consumer service's main() does before its loop runs."""

from __future__ import annotations

from collections.abc import Mapping

from kafka_common import events
from kafka_common.config import check_client_config, http_port, load_client_config, run_main
from kafka_common.logging import configure_logging
from kafka_common.runner import ConsumerService, Handler, ProjectionRunner
from kafka_common.usage import KafkaUsage


def serve(usage: KafkaUsage, handlers: Mapping[type[events.Payload], Handler], default_http_port: int,
          runner: type[ConsumerService] | type[ProjectionRunner] = ConsumerService, **options) -> None:
    """Configure logging, validate configuration (exit 2 on error), run the loop, exit with its code."""

    def main() -> int:
        configure_logging(usage.component)
        config = load_client_config()
        check_client_config(config)
        loop = runner(usage, handlers, client_config=config, http_port=http_port(default_http_port), **options)
        return loop.run()

    run_main(main)
