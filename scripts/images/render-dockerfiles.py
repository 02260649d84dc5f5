#!/usr/bin/env python3
"""Write services/<name>/Dockerfile for every service from scripts/images/Dockerfile.in.

The five Dockerfiles differ only in the service's name and description (taken
from its pyproject.toml), so they are rendered from one template. Each service
keeps its own Dockerfile path because skaffold and the Helm chart refer to it.

    python3 scripts/images/render-dockerfiles.py          # (re)write them
    python3 scripts/images/render-dockerfiles.py --check  # exit 1 if any is stale
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(__file__).resolve().with_name("Dockerfile.in")


def services(repo_root: Path = REPO_ROOT) -> list[str]:
    """Names of the services: folders under services/ with a pyproject.toml."""
    return sorted(p.parent.name for p in (repo_root / "services").glob("*/pyproject.toml"))


def render(service: str, repo_root: Path = REPO_ROOT) -> str:
    project = tomllib.loads((repo_root / "services" / service / "pyproject.toml").read_text())["project"]
    if project["name"] != f"pizza-{service}":
        raise SystemExit(f"services/{service}/pyproject.toml: expected project name pizza-{service}")
    description = " ".join(project.get("description", f"The {service} service.").split())
    description = description.replace("\\", "").replace('"', "'")
    text = TEMPLATE.read_text()
    return text.replace("@SERVICE@", service).replace("@DESCRIPTION@", f"Pizza shop on Kafka, {service}: {description}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the Dockerfiles are up to date")
    args = parser.parse_args(argv)
    stale = []
    for service in services():
        path = REPO_ROOT / "services" / service / "Dockerfile"
        text = render(service)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.relative_to(REPO_ROOT))
        if not args.check:
            path.write_text(text)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path}", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
