"""The service_process fixture, seen from outside: teardown stops processes, failures show their output."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

STANDIN = str(Path(__file__).with_name("standin_service.py"))

INNER_TEST = textwrap.dedent(f"""
    import sys

    def test_fails_while_a_service_runs(service_process, tmp_path_factory):
        proc = service_process([sys.executable, {STANDIN!r}, "inner"], name="inner", bootstrap="127.0.0.1:1")
        (tmp_path_factory.getbasetemp().parent / "inner.pid").write_text(str(proc.pid))
        assert proc.running
        assert False, "deliberate failure"
""")


def test_failed_test_report_shows_the_service_output_and_teardown_stops_it(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "shop_testing.pytest_plugin",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'base'}",
            "--rootdir",
            str(tmp_path),
            "-q",
            str(tmp_path / "test_inner.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "deliberate failure" in out
    assert "inner output (running" in out, out  # the section added to the failure report
    assert "inner: serving on" in out
    pid = int((tmp_path / "inner.pid").read_text())
    assert not Path(f"/proc/{pid}").exists(), "the fixture's teardown did not stop the service"
    log = (tmp_path / "base").rglob("inner.log")
    assert "inner: SIGTERM received, shutting down" in next(log).read_text()
