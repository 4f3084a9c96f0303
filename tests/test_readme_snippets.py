"""README "Use it elsewhere": its NumPy and PyTorch snippets, run as printed against a
real export, give what `POST /predict` gives (to 1e-6), features and all."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

README = Path(__file__).resolve().parents[1] / "README.md"
PROBE = [[0.5, -0.2], [0.0, 0.0], [-0.9, 0.7], [0.3, 0.95], [-0.4, -0.6]]
RUNS = {
    "float32 tanh with features": {
        "dataset": {"kind": "spiral", "n_samples": 60},
        "features": ["x1_x2", "sin_x1", "x2_sq", "x1"],
        "hidden_layers": [6, 4],
    },
    "float64 relu softmax, no biases": {
        "dataset": {"kind": "gauss", "n_classes": 3, "n_samples": 60},
        "activation": "relu",
        "use_bias": False,
        "dtype": "float64",
    },
    "leaky_relu regression": {
        "dataset": {"kind": "plane", "n_samples": 40},
        "activation": "leaky_relu",
        "hidden_layers": [5],
        "optimizer": "adam",
    },
    "sigmoid hidden layers": {
        "dataset": {"kind": "circle", "n_samples": 40},
        "activation": "sigmoid",
        "features": ["x1_sq", "x2_sq"],
    },
}


def snippet(title: str) -> str:
    """The README's python block whose first line is `# Use it elsewhere: <title>`."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if b.startswith(f"# Use it elsewhere: {title}\n")]
    assert len(found) == 1, f"README has no single '{title}' snippet"
    return found[0]


def exported_run(client: TestClient, fields: dict[str, Any], where: Path) -> str:
    run = client.post("/api/runs", json={**fields, "start": False}).json()
    client.post(f"/api/runs/{run['id']}/step", json={"epochs": 5})
    (where / "run.npz").write_bytes(client.get(f"/api/runs/{run['id']}/export.npz").content)
    return str(run["id"])


def served(client: TestClient, run_id: str) -> np.ndarray:
    response = client.post(f"/api/runs/{run_id}/predict", json={"inputs": PROBE})
    return np.asarray(response.json()["outputs"])


@pytest.mark.parametrize("fields", RUNS.values(), ids=RUNS.keys())
def test_numpy_snippet_predicts_like_the_server(
    client: TestClient, fields: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = exported_run(client, fields, tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(snippet("NumPy"), "README NumPy snippet", "exec"), namespace)
    ours = np.asarray(namespace["predict"](PROBE), dtype=np.float64)
    np.testing.assert_allclose(ours, served(client, run_id), rtol=0, atol=1e-6)


@pytest.mark.parametrize("fields", RUNS.values(), ids=RUNS.keys())
def test_pytorch_snippet_predicts_like_the_server(
    client: TestClient, fields: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    run_id = exported_run(client, fields, tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(snippet("PyTorch"), "README PyTorch snippet", "exec"), namespace)
    with torch.no_grad():
        ours = namespace["model"](namespace["network_inputs"](PROBE)).double().numpy()
    np.testing.assert_allclose(ours, served(client, run_id), rtol=0, atol=1e-6)
