"""What the weight history costs: stored bytes per run, and training speed with and
without taking snapshots (issue 10: "Snapshot storage is bounded and measured").

Bytes are exact: the snapshot policy (app.runs.controls.snapshot_due) walked over the
run's epochs, times the stored size of one snapshot (np.savez of the flat weights in
the run's dtype, as the store keeps it). Speed: the Trainer's epochs with the worker's
per-epoch snapshot step against the same epochs without it, alternated, medians.

    .venv/bin/python benchmarks/bench_snapshots.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.nn.datasets import make_dataset
from app.nn.network import count_params
from app.nn.training import Trainer
from app.runs.controls import snapshot_due
from app.storage.store import pack_arrays


def kept_count(n_params: int, epochs: int) -> int:
    last, count = 0, 1  # epoch 0
    for epoch in range(1, epochs + 1):
        if snapshot_due(epoch, last, n_params, epochs):
            last, count = epoch, count + 1
    return count + (last != epochs)  # the last epoch of the run is always kept


def stored_bytes(layer_sizes: list[int], epochs: int) -> tuple[int, int]:
    n = count_params(layer_sizes, True)
    one = len(pack_arrays({"params": np.zeros(n, dtype=np.float32)}))
    count = kept_count(n, epochs)
    return count, count * one


def speed(epochs: int = 2000, repeats: int = 5) -> tuple[float, float]:
    data = make_dataset({"kind": "spiral"})
    with_s, without = [], []
    for _ in range(repeats):
        for keep in (True, False):
            trainer = Trainer(data, hidden_layers=[8, 8], batch_size=10)
            last, kept = 0, []
            start = time.perf_counter()
            for _ in range(epochs):
                trainer.train_epoch()
                e = trainer.epoch
                if keep and snapshot_due(e, last, trainer.network.n_params, 100_000):
                    kept.append((e, trainer.network.params.copy()))
                    last = e
            (with_s if keep else without).append(epochs / (time.perf_counter() - start))
    return statistics.median(with_s), statistics.median(without)


def main() -> int:
    for name, sizes, epochs in (
        ("spiral [8, 8] at 100,000 epochs", [2, 8, 8, 1], 100_000),
        ("784-512-512-10 at 100 epochs", [784, 512, 512, 10], 100),
    ):
        count, total = stored_bytes(sizes, epochs)
        print(f"{name}: {count} snapshots, {total / 1e6:.2f} MB stored (float32)")
    with_s, without = speed()
    print(
        f"training speed, spiral [8, 8] (2,000 epochs x 5, medians): {with_s:,.0f} epochs/s "
        f"with snapshots, {without:,.0f} without: {with_s / without:.3f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
