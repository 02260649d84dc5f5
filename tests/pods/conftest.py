"""Fixtures of the pod tests: the chart rendered against the session's broker, and a kubelet
stand-in that runs its pods (kubelet.py, imported by path: pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kubelet import Kubelet, Release  # noqa: E402
from release import pod_values, render  # noqa: E402

from local_kafka.broker import free_port  # noqa: E402


@pytest.fixture(scope="module")
def pods_workdir():
    path = Path(tempfile.mkdtemp(prefix="pizza-pods-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def release(kafka_bootstrap, pods_workdir, image_tag) -> Release:
    return render(pod_values(kafka_bootstrap, image_tag), pods_workdir)


@pytest.fixture(scope="module")
def kubelet(release, pods_workdir, images):
    node = Kubelet(release, pods_workdir, free_port)
    yield node
    node.cleanup()
