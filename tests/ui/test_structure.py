"""House rules of the UI layer, checked on the source: imports, templates, no inline scripts."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]


def test_ui_never_imports_the_api_layer() -> None:
    for path in sorted((ROOT / "app" / "ui").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith("app.api"), f"{path.name} imports {name}"


def test_render_module_is_pure() -> None:
    tree = ast.parse((ROOT / "app" / "ui" / "render.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {
        "__future__",
        "base64",
        "math",
        "struct",
        "warnings",
        "zlib",
        "collections",
        "numpy",
    }


def test_every_template_opens_with_its_context_comment() -> None:
    templates = sorted((ROOT / "templates").rglob("*.html"))
    assert len(templates) > 10
    for path in templates:
        assert path.read_text().startswith("{# context:"), path.relative_to(ROOT)


@pytest.mark.parametrize("path", ["/runs", "/compare", "/descent", "RUN"])
def test_pages_have_no_inline_scripts_or_handlers(client: TestClient, path: str) -> None:
    if path == "RUN":
        created = client.post(
            "/api/runs", json={"start": False, "dataset": {"kind": "xor", "n_samples": 20}}
        )
        path = f"/runs/{created.json()['id']}"
    html = client.get(path).text
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert "hx-on" not in html and "javascript:" not in html
