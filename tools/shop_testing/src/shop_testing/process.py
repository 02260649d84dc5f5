"""One service as a real OS process: started with env overrides, its output in a file.

Used by the pytest fixtures (shop_testing.pytest_plugin) and the benchmarks:

    proc = ServiceProcess("bake", ["pizza-bake"], env={"KITCHEN_TIME_SCALE": "0"},
                          http_port=8003, log_file=Path("bake.log")).start()
    proc.wait_ready(timeout=60)       # GET /readyz == 200, else ServiceNotReady with the log's tail
    proc.log_text(); proc.log_tail(20); proc.wait_for_log("graceful shutdown")
    proc.terminate(); proc.wait(10)   # SIGTERM, exit code
    proc.stop()                       # SIGTERM, bounded wait, then SIGKILL to its process group

The child runs in its own session (process group), so Ctrl-C in a terminal
reaches only the launcher, which then sends SIGTERM to each service, as
Kubernetes does; SIGKILL goes to the whole group (gunicorn's workers too).
Output (stdout and stderr merged) is read line by line by a thread that
appends it to log_file and, optionally, hands each line to on_line.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from local_kafka.broker import HOST, free_port, pdeathsig_prefix, tail


class ServiceNotReady(RuntimeError):
    """A service did not become ready (or exited); the message carries the tail of its output."""


def venv_bin() -> Path:
    """The bin directory of the running interpreter's environment (where the console scripts are)."""
    return Path(sys.executable).parent


def resolve_command(command: str | Sequence[str]) -> list[str]:
    """A console script name ("pizza-bake") becomes the venv's script; a list is taken as it is."""
    if isinstance(command, str):
        command = [command]
    command = list(command)
    exe = command[0]
    if os.sep not in exe:
        candidate = venv_bin() / exe
        if candidate.exists():
            command[0] = str(candidate)
        elif found := shutil.which(exe):
            command[0] = found
        else:
            raise FileNotFoundError(f"{exe}: not in {venv_bin()} nor on PATH (is its package installed? `make venv`)")
    return command


class ServiceProcess:
    """A service started as a real process.

    name: shown in messages and used for the default log file name.
    command: argv, or a console script name looked up in the venv's bin dir.
    env: overrides on top of os.environ (a value of None removes the variable).
    http_port: the service's HTTP_PORT (set in its env); needed for wait_ready().
    INSTANCE_ID (in its env) defaults to name: give replicas distinct names.
    log_file: where its output goes (default: a new temporary file).
    on_line: called with each output line (without newline) from the reader thread.
    """

    def __init__(
        self,
        name: str,
        command: str | Sequence[str],
        *,
        env: Mapping[str, str | None] | None = None,
        http_port: int | None = None,
        log_file: Path | str | None = None,
        on_line: Callable[[str], None] | None = None,
        cwd: Path | str | None = None,
    ):
        self.name = name
        self.command = resolve_command(command)
        self.http_port = http_port
        self.env_overrides = dict(env or {})
        if http_port is not None:
            self.env_overrides.setdefault("HTTP_PORT", str(http_port))
        # API_PORT: a service's second port (status's query API); a free one unless given, so
        # several replicas on one machine never collide on the default.
        self.api_port = int(self.env_overrides.get("API_PORT") or free_port())
        self.env_overrides["API_PORT"] = str(self.api_port)
        # A stable replica identity (transactional.id derives from it): the same slot when
        # this replica is restarted, so the new process fences the old one.
        self.env_overrides.setdefault("INSTANCE_ID", name)
        if log_file is None:
            fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
            os.close(fd)
            log_file = path
        self.log_file = Path(log_file)
        self.on_line = on_line
        self.cwd = cwd
        self.popen: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ServiceProcess({self.name!r}, pid={self.pid}, returncode={self.returncode})"

    # ------------------------------------------------------------ state

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def url(self, path: str = "/") -> str:
        if self.http_port is None:
            raise ValueError(f"{self.name} has no http_port")
        return f"http://{HOST}:{self.http_port}{path}"

    def api_url(self, path: str = "/") -> str:
        """A URL on the service's API_PORT (status's query API)."""
        return f"http://{HOST}:{self.api_port}{path}"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # lines as they happen, not when a pipe buffer fills
        for key, value in self.env_overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = str(value)
        return env

    # ------------------------------------------------------------ lifecycle

    def start(self) -> ServiceProcess:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(
            pdeathsig_prefix() + self.command,
            env=self.environment(),
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._pump, name=f"output-{self.name}", daemon=True)
        self._reader.start()
        return self

    def _pump(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        with open(self.log_file, "ab") as out:
            for raw in iter(self.popen.stdout.readline, b""):
                out.write(raw)
                out.flush()
                if self.on_line is not None:
                    try:
                        self.on_line(raw.decode("utf-8", "replace").rstrip("\r\n"))
                    except Exception:  # a broken terminal must not stop the log file
                        pass
        self.popen.stdout.close()

    def signal(self, signum: int) -> None:
        """Send a signal to the service's main process (not its workers)."""
        if self.popen is not None and self.running:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signum)

    def terminate(self) -> None:
        """SIGTERM, as Kubernetes sends: the service shuts down gracefully."""
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the whole process group: a crash (workers included)."""
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit code (subprocess.TimeoutExpired after timeout); output fully in the log after."""
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        code = self.popen.wait(timeout)
        if self._reader is not None:
            # The pipe closes when the last holder exits; workers orphaned by a killed
            # master could hold it a little longer, so do not wait forever for them.
            self._reader.join(5.0)
        return code

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to timeout, then SIGKILL the group. Returns the exit code (None if never started)."""
        if self.popen is None:
            return None
        if self.running:
            self.terminate()
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            # The main process is gone; make sure nothing of its group lingers.
            self.kill()
        return self.wait()

    # ------------------------------------------------------------ observing

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_file, lines)

    def _failure(self, what: str) -> ServiceNotReady:
        if not self.running and self._reader is not None:
            self._reader.join(5.0)  # the last lines of a process that exited are still in the pipe
        return ServiceNotReady(
            f"{self.name} ({' '.join(self.command)}) {what}; "
            f"the end of its output ({self.log_file}):\n{self.log_tail()}"
        )

    def is_ready(self, path: str = "/readyz", timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def wait_ready(self, timeout: float = 60.0, path: str = "/readyz") -> ServiceProcess:
        """Wait until GET http://127.0.0.1:<http_port><path> answers 200.

        Raises ServiceNotReady with the tail of the output if the process exits or the time is up.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise self._failure(f"exited with code {self.returncode} before it was ready")
            if self.is_ready(path, timeout=min(2.0, max(0.1, deadline - time.monotonic()))):
                return self
            if time.monotonic() >= deadline:
                raise self._failure(f"did not answer 200 on {self.url(path)} within {timeout:.0f} s")
            self._exited_or_wait(0.1)

    def wait_for_log(self, pattern: str | re.Pattern, timeout: float = 30.0) -> re.Match:
        """Wait until the output matches a regex; returns the match (ServiceNotReady on timeout)."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log_text())
            if match:
                return match
            if time.monotonic() >= deadline:
                raise self._failure(f"did not print /{regex.pattern}/ within {timeout:.0f} s")
            if not self.running and (self._reader is None or not self._reader.is_alive()):
                match = regex.search(self.log_text())
                if match:
                    return match
                raise self._failure(f"exited with code {self.returncode} without printing /{regex.pattern}/")
            self._exited_or_wait(0.1)

    def _exited_or_wait(self, seconds: float) -> None:
        """Pause between checks of a condition, returning early when the process exits."""
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(seconds)
