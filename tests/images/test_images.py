"""The shop's container images, built for real from the one Dockerfile by scripts/images/build-images.sh.

Checks what the Helm chart and Kubernetes rely on: numeric non-root user,
exec-form entrypoint, nothing of the build left in the image, the package and
its console script installed, and a start under a read-only root file system
with only /tmp writable (what the chart's restricted securityContext gives).
Service behaviour is tested elsewhere, against the running services.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from kafka_common.shop.components import NAMES
from local_kafka.broker import free_port

REPO = Path(__file__).resolve().parents[2]
PODMAN = ["bash", str(REPO / "scripts/images/podman.sh")]
SERVICES = list(NAMES)
TAG = os.environ.get("IMAGES_TEST_TAG", "dev")
VENV_PYTHON = "/opt/venv/bin/python"
# Same limits as the build; podman's defaults copy the host's, which may be huge.
RUN = ["run", "--rm", "--network=host", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]

# A cold build (base image and five images) takes several minutes on two cores.
# The `images` fixture (tests/conftest.py) builds them once per session.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {shlex.join(args)} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def image_name(service: str) -> str:
    return f"localhost/pizza-{service}:{TAG}"


def run_in(service: str, *command: str, entrypoint: str = VENV_PYTHON, extra: tuple[str, ...] = ()) -> str:
    return podman(*RUN, *extra, "--entrypoint", entrypoint, image_name(service), *command).stdout


@pytest.mark.parametrize("service", SERVICES)
def test_runs_as_numeric_non_root_user(images, service):
    assert images[service]["Config"]["User"] == "10001:10001"
    ids = run_in(service, "-c", "import os; print(os.getuid(), os.getgid())").split()
    assert ids == ["10001", "10001"]
    assert run_in(service, "-u", entrypoint="id").strip() == "10001"


@pytest.mark.parametrize("service", SERVICES)
def test_exec_form_entrypoint_and_runtime_config(images, service):
    config = images[service]["Config"]
    assert config["Entrypoint"] == ["pizza-service"]  # a link to the service's console script (Dockerfile)
    assert not config.get("Cmd")
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["HTTP_PORT"] == "8080"
    assert env["LOG_FORMAT"] == "json"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].split(":")[0] == "/opt/venv/bin"
    assert "8080/tcp" in config["ExposedPorts"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == f"pizza-{service}"
    assert service in labels["org.opencontainers.image.description"]
    assert "org.opencontainers.image.source" in labels


CHECK_NOTHING_OF_THE_BUILD = r"""
import glob, importlib.metadata as md, os, shutil, sys
problems = []
for tool in ("gcc", "cc", "c++", "g++", "make", "ld"):
    if shutil.which(tool):
        problems.append(f"build tool on PATH: {shutil.which(tool)}")
if os.path.exists("/var/lib/dpkg/info/build-essential.list"):
    problems.append("build-essential is installed")
for pattern in ("/root/.cache/pip", "/tmp/.cache", "/home/*/.cache/pip", "/opt/venv/.cache", "/wheels", "/src"):
    problems += [f"left over: {p}" for p in glob.glob(pattern)]
installed = {d.metadata["Name"].lower() for d in md.distributions(path=[p for p in sys.path if p.startswith("/opt/venv")])}
problems += [f"build tool in the venv: {name}" for name in ("pip", "setuptools", "wheel") if name in installed]
if not {"kafka-common", "pizza-@SERVICE@"} <= installed:
    problems.append(f"packages missing from the venv: {sorted(installed)}")
for package in ("kafka_common", "pizza_@SERVICE@"):
    spec = __import__(package).__path__[0]
    problems += [f"tests shipped: {p}" for p in glob.glob(spec + "/**/tests", recursive=True)]
print("\n".join(problems))
"""


@pytest.mark.parametrize("service", SERVICES)
def test_nothing_of_the_build_in_the_final_image(images, service):
    problems = run_in(service, "-c", CHECK_NOTHING_OF_THE_BUILD.replace("@SERVICE@", service)).strip()
    assert problems == ""
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image_name(service)).stdout
    assert "pip.conf" not in history and "ca-certificates.crt" not in history


@pytest.mark.parametrize("service", SERVICES)
def test_package_imports_and_console_script_is_installed(images, service):
    script = f"""
import os, shutil, importlib.metadata as md
import kafka_common, pizza_{service}
path = shutil.which("pizza-{service}")
assert path == "/opt/venv/bin/pizza-{service}", path
assert os.path.realpath(shutil.which("pizza-service")) == path, "the entrypoint is not pizza-{service}"
(entry,) = [e for e in md.entry_points(group="console_scripts") if e.name == "pizza-{service}"]
assert callable(entry.load()), entry
print("ok")
"""
    assert run_in(service, "-c", script).strip() == "ok"


@pytest.mark.parametrize("service", SERVICES)
def test_read_only_root_file_system_with_tmp_writable(images, service):
    script = """
import os, tempfile
import kafka_common, pizza_@SERVICE@
with tempfile.NamedTemporaryFile() as f:
    f.write(b"x")
assert os.environ["HOME"] == "/tmp" and os.access(os.environ["HOME"], os.W_OK)
for path in ("/", "/opt/venv", "/opt/venv/bin", "/etc"):
    try:
        open(os.path.join(path, "probe"), "w").close()
    except OSError:
        continue
    raise SystemExit(f"{path} is writable on a read-only root file system")
print("ok")
""".replace("@SERVICE@", service)
    out = run_in(service, "-c", script, extra=("--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp"))
    assert out.strip() == "ok"


@pytest.mark.kafka
@pytest.mark.parametrize("service", SERVICES)
def test_starts_read_only_and_stops_cleanly_on_sigterm(images, service, kafka_bootstrap):
    """The image's entrypoint starts the service under a read-only root file
    system (only /tmp writable), it becomes ready against a real broker, and
    SIGTERM to PID 1 (what Kubernetes sends) ends it with exit code 0."""
    port = free_port()
    name = f"pizza-image-test-{service}-{uuid.uuid4().hex[:8]}"
    podman(
        "run",
        "-d",
        "--name",
        name,
        "--network=host",
        "--ulimit",
        "nofile=4096:4096",
        "--ulimit",
        "nproc=4096:4096",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs",
        "/tmp",
        "-e",
        f"HTTP_PORT={port}",
        "-e",
        f"KAFKA_BOOTSTRAP_SERVERS={kafka_bootstrap}",
        "-e",
        "SECRET_KEY=image-test",
        "-e",
        "STATUS_URL=http://127.0.0.1:9",
        image_name(service),
    )
    try:
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline:
            state = podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            assert state == "true", "container exited:\n" + podman("logs", name, check=False).stderr[-4000:]
            try:
                ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code
            except requests.ConnectionError:
                ready = None
            if ready == 200:
                break
            time.sleep(0.5)  # polling interval, not a wait for a fixed time
        logs = podman("logs", name, check=False)
        assert ready == 200, f"/readyz never 200 (last {ready}):\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
        podman("stop", "--time", "30", name, timeout=60)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        logs = podman("logs", name, check=False)
        assert code == "0", f"exit code {code} after SIGTERM:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)
