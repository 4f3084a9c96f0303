"""app.nn is pure: numpy and the stdlib only; it passes mypy --strict."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NN = ROOT / "app" / "nn"


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                roots.add("app")  # relative import: inside the package
            elif node.module:
                if node.module.startswith("app.") and not node.module.startswith("app.nn"):
                    roots.add(node.module)
                else:
                    roots.add(node.module.split(".")[0])
    return roots


def test_app_nn_imports_only_numpy_and_the_stdlib() -> None:
    allowed = set(sys.stdlib_module_names) | {"numpy", "app"}
    files = sorted(NN.glob("*.py"))
    assert len(files) >= 7
    for path in files:
        bad = _imported_roots(path) - allowed
        assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.slow
def test_mypy_strict_passes_on_app_nn() -> None:
    mypy = Path(sys.executable).parent / "mypy"
    if not mypy.exists():
        found = shutil.which("mypy")
        if found is None:
            pytest.skip("mypy is not installed")
        mypy = Path(found)
    result = subprocess.run(
        [str(mypy), "app/nn"], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout + result.stderr
