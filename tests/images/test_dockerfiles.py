"""Fast checks of the image build's sources (no podman needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = ["assemble", "bake", "delivery", "status", "webapp"]
SCRIPTS = ["lib.sh", "podman.sh", "build-base-image.sh", "build-images.sh"]


def test_every_service_has_its_dockerfile_rendered_from_the_template():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts/images/render-dockerfiles.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, (
        "services/*/Dockerfile differ from scripts/images/Dockerfile.in; run "
        f"python3 scripts/images/render-dockerfiles.py\n{result.stderr}"
    )
    for service in SERVICES:
        assert (REPO / "services" / service / "Dockerfile").is_file()


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_contract(service):
    text = (REPO / "services" / service / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert lines[[i for i, line in enumerate(lines) if line and not line.startswith("#")][0]] == (
        "ARG PYTHON_IMAGE=python:3.12-slim"
    )
    assert lines.count("FROM ${PYTHON_IMAGE}") == 1  # the final stage
    assert "USER 10001:10001" in lines
    assert "EXPOSE 8080" in lines
    assert lines[-1] == f'ENTRYPOINT ["pizza-{service}"]'
    assert "--no-index --find-links /wheels" in text
    for env in ("HTTP_PORT=8080", "LOG_FORMAT=json", "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"):
        assert env in text
    for label in ("source", "title", "description"):
        assert f"org.opencontainers.image.{label}=" in text
    # The final stage copies the venv only: no wheels, sources or pip runs in it.
    final = text[text.rindex("FROM ${PYTHON_IMAGE}") :]
    assert "RUN " not in final
    assert [line for line in final.splitlines() if line.startswith("COPY")] == ["COPY --from=venv /opt/venv /opt/venv"]


def test_shared_wheel_stage_is_identical_in_all_dockerfiles():
    def wheel_stage(service: str) -> str:
        text = (REPO / "services" / service / "Dockerfile").read_text()
        return text[text.index("FROM ${PYTHON_IMAGE} AS wheels") : text.index("FROM ${PYTHON_IMAGE} AS venv")]

    stages = {service: wheel_stage(service) for service in SERVICES}
    assert len(set(stages.values())) == 1, stages


def test_dockerignore_keeps_the_context_small():
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "**"  # allow-list: everything else is out
    assert set(p for p in patterns if p.startswith("!")) == {"!libs/", "!services/"}
    for needed in ("**/tests", "**/.venv", "**/__pycache__", "**/.cache", "**/node_modules", "**/*.egg-info"):
        assert needed in patterns


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse(script):
    result = subprocess.run(["bash", "-n", str(REPO / "scripts/images" / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
