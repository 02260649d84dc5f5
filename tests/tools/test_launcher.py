"""The `make run` launcher's supervision: readiness message, SIGTERM/Ctrl-C to every service, ports freed.

The real services are replaced by stand-ins (standin_service.py) through the
launcher's injectable service table (--services); the launcher itself runs as
a real process, signalled as a terminal or Kubernetes would.
"""

import io
import json
import re
import signal
import sys
from pathlib import Path

from confluent_kafka.admin import AdminClient

from kafka_common.shop.components import STATUS_API_URL
from kafka_common.shop.topics import TOPICS
from local_kafka.broker import free_port, port_is_free
from shop_launcher.launcher import Output, default_services
from shop_testing.process import ServiceProcess

STANDIN = str(Path(__file__).with_name("standin_service.py"))


def service_table(tmp_path, *services):
    """services: (name, extra flags, env); returns (path of the JSON table, {name: port})."""
    table, ports = [], {}
    for name, flags, env in services:
        ports[name] = free_port()
        table.append(
            {"name": name, "command": [sys.executable, STANDIN, name, *flags], "http_port": ports[name], "env": env}
        )
    path = tmp_path / "services.json"
    path.write_text(json.dumps(table))
    return path, ports


def launcher(tmp_path, table, *args, env):
    return ServiceProcess(
        "shop",
        [
            sys.executable,
            "-m",
            "shop_launcher",
            "--services",
            str(table),
            "--log-dir",
            str(tmp_path / "logs"),
            *args,
        ],
        env=env,
        log_file=tmp_path / "shop.out",
    ).start()


def test_sigterm_stops_every_service_then_the_launcher_and_frees_the_ports(tmp_path, kafka_bootstrap):
    table, ports = service_table(
        tmp_path,
        ("status", [], {}),
        ("stubborn", ["--ignore-sigterm"], {}),
        ("webapp", [], {"STATUS_URL": "http://127.0.0.1:9"}),
    )
    shop = launcher(tmp_path, table, "--shutdown-timeout", "2", env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    try:
        shop.wait_for_log(rf"The shop is open: http://127\.0\.0\.1:{ports['webapp']}", timeout=60)
        out = shop.log_text()
        assert f"using the Kafka cluster at {kafka_bootstrap}" in out
        for topic in TOPICS:
            assert f"topic {topic.name}: exists" in out  # the session broker has them already
        assert re.search(
            rf"webapp\s+\| webapp: serving on {ports['webapp']} with "
            rf"KAFKA_BOOTSTRAP_SERVERS={kafka_bootstrap} STATUS_URL=http://127.0.0.1:9",
            out,
        )

        shop.terminate()
        assert shop.wait(60) == 0
    finally:
        shop.stop()
    out = shop.log_text()
    assert "SIGTERM received: shutting down" in out
    assert re.search(r"status\s+\| status: SIGTERM received, shutting down", out)
    assert re.search(r"webapp\s+\| webapp: stopped", out)
    assert re.search(r"stubborn\s+\| stubborn: SIGTERM received, ignoring it", out)
    assert "stubborn: no exit within 2 s, sending SIGKILL" in out
    assert f"stubborn exited with code {-signal.SIGKILL}" in out
    assert "status exited with code 0" in out and "webapp exited with code 0" in out
    assert out.rstrip().endswith("all stopped")
    for name, port in ports.items():
        assert port_is_free(port), f"{name}'s port {port} is still taken"
        assert "serving on" in (tmp_path / "logs" / f"{name}.log").read_text()  # each service's own log


def test_a_service_that_dies_stops_the_shop_with_a_clear_message(tmp_path, kafka_bootstrap):
    ready = str(tmp_path / "status.ready")
    table, ports = service_table(
        tmp_path, ("status", [], {"READY_FILE": ready}), ("bake", ["--crash", "3"], {"AWAIT_FILE": ready})
    )
    shop = launcher(tmp_path, table, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    try:
        assert shop.wait(60) == 1
    finally:
        shop.stop()
    out = shop.log_text()
    assert "bake exited unexpectedly with code 3: stopping the shop" in out
    assert re.search(r"status\s+\| status: SIGTERM received, shutting down", out)
    assert all(port_is_free(p) for p in ports.values())


def test_ctrl_c_with_its_own_broker_stops_services_then_kafka(tmp_path):
    kafka_port, controller_port = free_port(), free_port()
    table, ports = service_table(tmp_path, ("webapp", [], {}))
    shop = launcher(
        tmp_path,
        table,
        "--kafka-port",
        str(kafka_port),
        "--controller-port",
        str(controller_port),
        "--data-dir",
        str(tmp_path / "kafka"),
        env={"KAFKA_BOOTSTRAP_SERVERS": None},
    )
    try:
        shop.wait_for_log(r"The shop is open", timeout=180)
        bootstrap = f"127.0.0.1:{kafka_port}"
        assert f"KAFKA_BOOTSTRAP_SERVERS={bootstrap} " in shop.log_text()
        topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
        assert {t.name for t in TOPICS} <= set(topics)

        shop.signal(signal.SIGINT)  # what Ctrl-C in the terminal delivers
        assert shop.wait(90) == 0
    finally:
        shop.stop()
    out = shop.log_text()
    stopped = re.search(r"kafka\s+\| stopped", out)
    assert stopped, out
    assert out.index("webapp exited with code 0") < out.index("stopping Kafka") < stopped.start()
    for port in (kafka_port, controller_port, ports["webapp"]):
        assert port_is_free(port)
    assert (
        "Kafka Server started" in (tmp_path / "kafka" / "broker.log").read_text()
        or "Transition from STARTING to STARTED" in (tmp_path / "kafka" / "broker.log").read_text()
    )


def test_output_prefixes_and_colors_lines():
    plain, colored = io.StringIO(), io.StringIO()
    Output(plain, ["webapp", "bake"], color=False).line("bake", "hello")
    Output(colored, ["webapp", "bake"], color=True).line("bake", "hello")
    assert plain.getvalue() == "bake   | hello\n"
    assert colored.getvalue().startswith("\033[") and colored.getvalue().endswith("bake   | \033[0mhello\n")


def test_default_service_table_matches_the_design():
    table = {s.name: s for s in default_services()}
    assert {n: s.http_port for n, s in table.items()} == {
        "webapp": 8000,
        "status": 8001,
        "assemble": 8002,
        "bake": 8003,
        "delivery": 8004,
    }
    assert {n: list(s.command) for n, s in table.items()} == {n: [f"pizza-{n}"] for n in table}
    assert STATUS_API_URL == "http://127.0.0.1:8011"  # the webapp's default STATUS_URL: status's query API
    assert table["status"].api_port == 8011
    assert {n: s.env["INSTANCE_ID"] for n, s in table.items()} == {n: f"{n}-0" for n in table}
