"""Fixtures of the chart tests; the helpers are in chart_helpers.py (imported by path,
since pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from chart_helpers import VALUES_CASES, VALUES_IDS, Rendered, render  # noqa: E402


@pytest.fixture(scope="session", params=VALUES_CASES, ids=VALUES_IDS)
def rendered(request) -> Rendered:
    return render(request.param)


@pytest.fixture(scope="session")
def all_rendered() -> list[Rendered]:
    return [render(v) for v in VALUES_CASES]
