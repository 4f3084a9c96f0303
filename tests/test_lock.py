"""The lock files match pyproject.toml, and the Dockerfile builds from what the repo has.

Docker is not on the development machines: these checks read the files (a COPY of a
missing file, a root user or an unlocked install would be caught here, a typo in a
RUN line would not)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)")


def pins(path: Path) -> dict[str, list[tuple[str, int]]]:
    """name -> [(version, number of hashes)] (a name may be pinned per Python version)."""
    found: dict[str, list[tuple[str, int]]] = {}
    entries = re.split(r"\n(?=\S)", path.read_text())
    for entry in entries:
        match = PIN.match(entry)
        if match:
            name = canonicalize_name(match.group(1))
            found.setdefault(name, []).append((match.group(2), entry.count("--hash=sha256:")))
    return found


def requirements(extra: str | None = None) -> list[Requirement]:
    """An extra's requirements, with the project's own extras it names (the test extra
    pulls in `backprop-live[postgres,cluster]`) replaced by theirs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    raw = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    found: list[Requirement] = []
    for requirement in map(Requirement, raw):
        if canonicalize_name(requirement.name) == canonicalize_name(project["name"]):
            found += [r for name in sorted(requirement.extras) for r in requirements(name)]
        else:
            found.append(requirement)
    return found


def test_the_lock_pins_every_dependency_within_its_range_with_hashes() -> None:
    locked = pins(ROOT / "requirements.lock")
    for requirement in requirements() + requirements("test"):
        versions = locked.get(canonicalize_name(requirement.name))
        assert versions, f"{requirement.name} is not in requirements.lock: run `make lock`"
        for version, _ in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements.lock pins {requirement.name}=={version}, outside "
                f"{requirement.specifier}: run `make lock`"
            )
    assert all(n >= 1 for entries in locked.values() for _, n in entries), "a pin without hash"


def test_the_runtime_lock_is_the_same_pins_without_the_test_tools() -> None:
    full, runtime = pins(ROOT / "requirements.lock"), pins(ROOT / "requirements-runtime.lock")
    for requirement in requirements():
        assert canonicalize_name(requirement.name) in runtime, requirement.name
    for name, versions in runtime.items():
        assert full.get(name) == versions, f"{name}: {versions} vs {full.get(name)}"
    for tool in ("pytest", "playwright", "schemathesis", "mypy", "ruff"):
        assert tool not in runtime


def test_the_dockerfile_builds_from_files_the_repository_has() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, flags=re.M)
    assert stages == ["python:3.11-slim-bookworm", "python:3.11-slim-bookworm"]
    for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, flags=re.M):
        *sources, _ = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not here"
    final = dockerfile.split("FROM python:3.11-slim-bookworm\n", 1)[1]
    assert "nodejs" not in final and "npm" not in final  # Node only in the build stage
    assert re.search(r"^USER (?!root)\w+", final, flags=re.M)
    assert "BACKPROP_LIVE_DB=/data/backprop-live.db" in final
    assert "VOLUME /data" in final
    assert '"--host", "0.0.0.0"' in final
    assert "--require-hashes -r requirements-runtime.lock" in dockerfile
    assert "npm ci" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    for heavy in (".git", ".venv", "node_modules", "*.db"):
        assert heavy in ignored
