"""Fixtures of the observability tests; the helpers live in obs_checks.py (importable
from the tests of this folder: pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    assert Path(path).is_file(), "promtool not found: apt-get install prometheus (Debian/Ubuntu)"
    return path
