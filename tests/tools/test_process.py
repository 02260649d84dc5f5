"""ServiceProcess: a real child process, its output in a file, readiness, SIGTERM and SIGKILL."""

import signal
import sys
from pathlib import Path

import pytest

from local_kafka.broker import free_port, port_is_free
from shop_testing.process import ServiceNotReady, ServiceProcess

STANDIN = str(Path(__file__).with_name("standin_service.py"))


def standin(name, tmp_path, *flags, **env):
    port = free_port()
    return ServiceProcess(
        name,
        [sys.executable, STANDIN, name, *flags],
        env={"KAFKA_BOOTSTRAP_SERVERS": "x:1", **env},
        http_port=port,
        log_file=tmp_path / f"{name}.log",
    )


def test_ready_then_sigterm_exits_cleanly_and_frees_the_port(tmp_path):
    proc = standin("bake", tmp_path, STATUS_URL="http://status").start()
    proc.wait_ready(timeout=30)

    assert "KAFKA_BOOTSTRAP_SERVERS=x:1 STATUS_URL=http://status" in proc.log_text()
    assert f"serving on {proc.http_port}" in proc.log_text()
    proc.terminate()
    assert proc.wait(15) == 0
    assert "bake: SIGTERM received, shutting down" in proc.log_text()
    assert proc.log_tail(1) == "bake: stopped"
    assert port_is_free(proc.http_port)


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path):
    proc = standin("stubborn", tmp_path, "--ignore-sigterm").start().wait_ready(30)

    code = proc.stop(timeout=1.0)

    assert code == -signal.SIGKILL
    assert "SIGTERM received, ignoring it" in proc.log_text()
    assert port_is_free(proc.http_port)


def test_wait_ready_fails_with_the_output_tail_when_the_process_exits(tmp_path):
    proc = standin("crasher", tmp_path, "--crash", "3").start()

    with pytest.raises(ServiceNotReady) as err:
        proc.wait_ready(timeout=30)

    assert "exited with code 3" in str(err.value)
    assert "crasher: crashing with code 3" in str(err.value)
    assert proc.wait(5) == 3


def test_wait_ready_times_out_with_a_clear_message(tmp_path):
    # Listens nowhere: never ready.
    proc = ServiceProcess(
        "mute",
        [sys.executable, "-c", "import time; print('thinking', flush=True); time.sleep(600)"],
        http_port=free_port(),
        log_file=tmp_path / "mute.log",
    ).start()
    try:
        proc.wait_for_log("thinking", timeout=30)  # started, whatever the machine's load
        with pytest.raises(ServiceNotReady, match=r"(?s)did not answer 200 on http://127.0.0.1:\d+/readyz.*thinking"):
            proc.wait_ready(timeout=2)
    finally:
        assert proc.stop(timeout=5) == -signal.SIGTERM


def test_env_override_none_removes_a_variable_and_console_scripts_resolve_in_the_venv(tmp_path, monkeypatch):
    monkeypatch.setenv("SOME_LEFTOVER", "1")
    proc = ServiceProcess(
        "env",
        [
            sys.executable,
            "-c",
            "import os; print(sorted(k for k in os.environ if k in ('SOME_LEFTOVER', 'EXTRA', 'PYTHONUNBUFFERED')))",
        ],
        env={"SOME_LEFTOVER": None, "EXTRA": "y"},
        log_file=tmp_path / "env.log",
    ).start()
    assert proc.wait(30) == 0
    assert proc.log_text().strip() == "['EXTRA', 'PYTHONUNBUFFERED']"

    created = ServiceProcess("topics", "pizza-create-topics", log_file=tmp_path / "t.log")
    assert created.command[0] == str(Path(sys.executable).parent / "pizza-create-topics")
    with pytest.raises(FileNotFoundError, match="no-such-service"):
        ServiceProcess("x", "no-such-service")


def test_service_process_fixture_passes_the_session_broker(service_process, kafka_bootstrap):
    proc = service_process([sys.executable, STANDIN, "fixture-standin"], name="standin")
    again = service_process([sys.executable, STANDIN, "second"], name="standin", wait_ready=False)

    assert proc.running and proc.is_ready()
    assert f"KAFKA_BOOTSTRAP_SERVERS={kafka_bootstrap} " in proc.log_text()
    assert (proc.log_file.name, again.log_file.name) == ("standin.log", "standin-2.log")
    assert proc.http_port != again.http_port
