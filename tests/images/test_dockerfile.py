"""Fast checks of the image build's sources (no podman needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = ["lib.sh", "podman.sh", "build-base-image.sh", "build-images.sh"]


def dockerfile_lines() -> list[str]:
    return [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]


def test_one_dockerfile_for_every_service():
    assert not list((REPO / "services").glob("*/Dockerfile"))
    text = (REPO / "Dockerfile").read_text()
    lines = dockerfile_lines()
    first = next(line for line in lines if line and not line.startswith("#"))
    assert first == "ARG PYTHON_IMAGE=python:3.12-slim"  # tests build on a local base
    assert "ARG SERVICE" in lines
    assert lines.count("FROM ${PYTHON_IMAGE}") == 1  # the final stage
    assert "USER 10001:10001" in lines
    assert "EXPOSE 8080" in lines
    assert lines[-1] == 'ENTRYPOINT ["pizza-service"]'
    assert 'ln -s "pizza-${SERVICE}" /opt/venv/bin/pizza-service' in text
    # The lock decides every version: no resolution at build time.
    assert 'uv sync --frozen --no-dev --no-editable --package "pizza-${SERVICE}"' in text
    for env in ("HTTP_PORT=8080", "LOG_FORMAT=json", "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"):
        assert env in text
    for label in ("source", "title", "description"):
        assert f"org.opencontainers.image.{label}=" in text
    # The final stage copies the venv only: no sources, no build tools, nothing run in it.
    final = text[text.rindex("FROM ${PYTHON_IMAGE}") :]
    assert "RUN " not in final
    assert [line for line in final.splitlines() if line.startswith("COPY")] == ["COPY --from=venv /opt/venv /opt/venv"]


def test_the_lock_is_up_to_date_with_every_pyproject():
    pinned = REPO / ".cache/uv/bin/uv"  # what `make venv` uses
    uv = str(pinned) if pinned.exists() else shutil.which("uv")
    assert uv, "no uv: make venv"
    result = subprocess.run([uv, "lock", "--check", "--offline"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"uv.lock is stale: run `uv lock`\n{result.stderr}"


def test_dockerignore_keeps_the_context_small():
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "**"  # allow-list: everything else is out
    assert set(p for p in patterns if p.startswith("!")) == {
        "!pyproject.toml",
        "!uv.lock",
        "!libs/",
        "!tools/",
        "!services/",
    }
    for needed in ("**/tests", "**/.venv", "**/__pycache__", "**/.cache", "**/node_modules", "**/*.egg-info"):
        assert needed in patterns


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse(script):
    result = subprocess.run(["bash", "-n", str(REPO / "scripts/images" / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
