"""The `make run` launcher (honcho plus Kafka first): readiness message, SIGTERM/Ctrl-C to every
process, the longer kill wait, a crash stopping the shop, ports freed.

The real services are replaced by stand-ins (standin_service.py) in a Procfile of the test's
own (--procfile, --port); the launcher itself runs as a real process, signalled as a terminal
or Kubernetes would.
"""

import re
import shlex
import signal
import sys
from pathlib import Path

from confluent_kafka.admin import AdminClient

from kafka_common.shop.components import COMPONENTS, STATUS_API_URL
from kafka_common.shop.topics import TOPICS
from local_kafka.broker import free_port, port_is_free, repo_root
from shop_launcher.launcher import Shop
from shop_testing.process import ServiceProcess

STANDIN = str(Path(__file__).with_name("standin_service.py"))


def procfile(tmp_path, *processes):
    """processes: (name, extra flags, env); returns (path of the Procfile, {name: port})."""
    lines, ports = [], {}
    for name, flags, env in processes:
        ports[name] = free_port()
        settings = [f"{k}={v}" for k, v in env.items()]
        lines.append(f"{name}: exec {shlex.join(['env', *settings, sys.executable, STANDIN, name, *flags])}")
    path = tmp_path / "Procfile"
    path.write_text("\n".join(lines) + "\n")
    return path, ports


def launcher(tmp_path, procfile_path, ports, *args, env):
    port_args = [arg for name, port in ports.items() for arg in ("--port", f"{name}={port}")]
    return ServiceProcess(
        "shop",
        [
            sys.executable,
            "-m",
            "shop_launcher",
            "--procfile",
            str(procfile_path),
            "--log-dir",
            str(tmp_path / "logs"),
            *port_args,
            *args,
        ],
        env=env,
        log_file=tmp_path / "shop.out",
    ).start()


def test_sigterm_stops_every_process_then_the_launcher_and_frees_the_ports(tmp_path, kafka_bootstrap):
    path, ports = procfile(
        tmp_path,
        ("kitchen", [], {}),
        ("stubborn", ["--ignore-sigterm"], {}),
        ("webapp", [], {"STATUS_URL": "http://127.0.0.1:9"}),
    )
    shop = launcher(tmp_path, path, ports, "--shutdown-timeout", "2", env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    try:
        shop.wait_for_log(rf"The shop is open: http://127\.0\.0\.1:{ports['webapp']}", timeout=60)
        for name in ("kitchen", "stubborn"):  # the shop opens with the webapp: the others handle SIGTERM once serving
            shop.wait_for_log(rf"{name}: serving on", timeout=60)
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
    assert "SIGTERM received" in out
    assert re.search(r"kitchen\s+\| kitchen: SIGTERM received, shutting down", out)
    assert re.search(r"webapp\s+\| webapp: stopped", out)
    assert re.search(r"stubborn\s+\| stubborn: SIGTERM received, ignoring it", out)
    assert re.search(r"sending SIGKILL to stubborn", out)  # after the launcher's 2 s, not honcho's 5
    assert f"stubborn stopped (rc={-signal.SIGKILL})" in out
    assert "kitchen stopped (rc=0)" in out and "webapp stopped (rc=0)" in out
    assert out.rstrip().endswith("all stopped")
    for name, port in ports.items():
        assert port_is_free(port), f"{name}'s port {port} is still taken"
        assert "serving on" in (tmp_path / "logs" / f"{name}.log").read_text()  # each process's own log


def test_a_service_that_dies_stops_the_shop_with_a_clear_message(tmp_path, kafka_bootstrap):
    ready = str(tmp_path / "kitchen.ready")
    path, ports = procfile(
        tmp_path, ("kitchen", [], {"READY_FILE": ready}), ("bake", ["--crash", "3"], {"AWAIT_FILE": ready})
    )
    shop = launcher(tmp_path, path, ports, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    try:
        assert shop.wait(60) == 1
    finally:
        shop.stop()
    out = shop.log_text()
    assert (
        f"bake exited on its own with code 3, so the shop stopped (its output: {tmp_path / 'logs' / 'bake.log'})" in out
    )
    assert re.search(r"kitchen\s+\| kitchen: SIGTERM received, shutting down", out)
    assert all(port_is_free(p) for p in ports.values())


def test_ctrl_c_with_its_own_broker_stops_services_then_kafka(tmp_path):
    kafka_port, controller_port = free_port(), free_port()
    path, ports = procfile(tmp_path, ("webapp", [], {}))
    shop = launcher(
        tmp_path,
        path,
        ports,
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
    assert out.index("webapp stopped (rc=0)") < out.index("stopping Kafka") < stopped.start()
    for port in (kafka_port, controller_port, ports["webapp"]):
        assert port_is_free(port)
    assert (
        "Kafka Server started" in (tmp_path / "kafka" / "broker.log").read_text()
        or "Transition from STARTING to STARTED" in (tmp_path / "kafka" / "broker.log").read_text()
    )


def test_the_procfile_runs_every_component_with_its_ports_and_slot():
    shop = Shop(repo_root() / "Procfile", bootstrap="127.0.0.1:9092")
    assert shop.processes == {c.name: f"exec {c.console_script}" for c in COMPONENTS}
    ports = {n: shop.environment(n)["HTTP_PORT"] for n in shop.processes}
    assert ports == {"webapp": "8000", "status": "8001", "assemble": "8002", "bake": "8003", "delivery": "8004"}
    assert shop.environment("status")["API_PORT"] == "8011"
    assert shop.environment("bake")["PATH"].startswith(str(Path(sys.executable).parent))  # the venv's console scripts
    assert STATUS_API_URL == "http://127.0.0.1:8011"  # the webapp's default STATUS_URL: status's query API
    assert {n: shop.environment(n)["INSTANCE_ID"] for n in shop.processes} == {n: f"{n}-0" for n in shop.processes}
