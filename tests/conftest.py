"""Fixtures shared by the container test folders (tests/images)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kafka_common.shop.components import NAMES

REPO = Path(__file__).resolve().parents[1]
SERVICES = list(NAMES)
IMAGE_TAG = os.environ.get("IMAGES_TEST_TAG", "dev")


def image_name(service: str) -> str:
    return f"localhost/pizza-{service}:{IMAGE_TAG}"


@pytest.fixture(scope="session")
def image_tag() -> str:
    """Tag of the images under test (IMAGES_TEST_TAG, default dev)."""
    return IMAGE_TAG


@pytest.fixture(scope="session")
def images() -> dict[str, dict]:
    """Builds the five images once per session with scripts/images/build-images.sh (a warm build
    is only layer-cache hits) and returns each image's `podman image inspect` data."""
    env = {**os.environ, "TAG": IMAGE_TAG}
    result = subprocess.run(
        ["bash", str(REPO / "scripts/images/build-images.sh"), *SERVICES],
        capture_output=True,
        text=True,
        timeout=1700,
        env=env,
        cwd=REPO,
    )
    if result.returncode != 0:
        pytest.fail(f"build-images.sh exited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    inspect = subprocess.run(
        ["bash", str(REPO / "scripts/images/podman.sh"), "image", "inspect", *(image_name(s) for s in SERVICES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if inspect.returncode != 0:
        pytest.fail(f"podman image inspect failed:\n{inspect.stderr[-3000:]}")
    return dict(zip(SERVICES, json.loads(inspect.stdout), strict=True))
