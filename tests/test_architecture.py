"""The dependency direction of DESIGN.md, read from the imports of every module.

nn <- runs <- (api, ui); storage is used by runs; api and ui never import each
other; only app/main.py sees every layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"

# package -> prefixes its modules may not import
FORBIDDEN = {
    "nn": ("app.", "fastapi", "starlette", "jinja2", "pydantic", "orjson"),
    "storage": ("app.runs", "app.api", "app.ui", "fastapi", "starlette", "jinja2"),
    "runs": ("app.api", "app.ui", "fastapi", "starlette", "jinja2"),
    "api": ("app.ui",),
    "ui": ("app.api",),
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_follow_the_dependency_direction(package: str) -> None:
    modules = sorted((APP / package).rglob("*.py"))
    assert modules, f"no modules in app/{package}"
    broken = [
        f"{path.relative_to(APP.parent)} imports {name}"
        for path in modules
        for name in sorted(imports_of(path))
        if name.startswith(FORBIDDEN[package]) and not name.startswith(f"app.{package}")
    ]
    assert not broken, "\n".join(broken)


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    # The parser must notice both import forms, or the test above proves nothing.
    module = tmp_path / "m.py"
    module.write_text("import fastapi\nfrom app.api import errors\nfrom . import x\n")
    assert imports_of(module) == {"fastapi", "app.api"}
