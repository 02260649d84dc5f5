"""Helpers of the Helm chart, skaffold.yaml and workflow tests.

helm and actionlint come from `make tools` (.cache/bin, first on PATH under
make). The upstream CRD and skaffold schemas come from <repo>/../shared/schemas
or $PIZZA_SCHEMAS_DIR. Each values file is rendered once per session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "pizza-shop"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
COMPONENTS = ("webapp", "status", "assemble", "bake", "delivery")
KUBE_VERSION = "1.34.0"
RELEASE = "pizza-shop"
NAMESPACE = "pizza"

# Every values set the chart is tested with: the defaults and each ci/*.yaml.
VALUES_CASES = [None, *CI_VALUES]
VALUES_IDS = ["defaults", *(p.stem for p in CI_VALUES)]


def tool(name: str) -> str:
    local = REPO / ".cache" / "bin" / name
    found = shutil.which(name) or (str(local) if local.is_file() else None)
    if not found:
        pytest.fail(f"{name} not found on PATH or in .cache/bin: run `make tools` (builds helm and actionlint)")
    return found


def schemas_dir() -> Path:
    path = Path(os.environ.get("PIZZA_SCHEMAS_DIR") or REPO.parent / "shared" / "schemas")
    if not path.is_dir():
        pytest.fail(
            f"schema folder {path} is missing: put the upstream CRD and skaffold schemas there "
            "(see shared/schemas/README.md) or point PIZZA_SCHEMAS_DIR at them"
        )
    return path


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([tool("helm"), *args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def template_args(values: Path | None, *extra: str, chart: Path = CHART) -> list[str]:
    args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
    if values is not None:
        args += ["-f", str(values)]
    return args + list(extra)


def parse_manifests(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


class Rendered:
    def __init__(self, name: str, values: Path | None, docs: list[dict]):
        self.name = name
        self.values_file = values
        self.values = chart_values(values)
        self.docs = docs

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: expected one {kind} {name}, found {len(found)}"
        return found[0]

    def pod_specs(self) -> list[tuple[str, dict]]:
        specs = [
            (f"Deployment/{d['metadata']['name']}", d["spec"]["template"]["spec"]) for d in self.of_kind("Deployment")
        ]
        specs += [(f"Pod/{d['metadata']['name']}", d["spec"]) for d in self.of_kind("Pod")]
        return specs


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def chart_values(values: Path | None) -> dict:
    merged = yaml.safe_load((CHART / "values.yaml").read_text())
    if values is not None:
        merged = deep_merge(merged, yaml.safe_load(values.read_text()) or {})
    return merged


_cache: dict[str, Rendered] = {}


def render(values: Path | None) -> Rendered:
    key = str(values)
    if key not in _cache:
        name = values.stem if values else "defaults"
        out = helm(*template_args(values)).stdout
        _cache[key] = Rendered(name, values, parse_manifests(out))
    return _cache[key]
