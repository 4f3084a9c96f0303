"""Trainer throughput: our NumPy Trainer vs PyTorch (CPU) and scikit-learn, one BLAS thread.

Usage:
    .venv/bin/python benchmarks/bench_trainer.py            # full run (a few minutes)
    .venv/bin/python benchmarks/bench_trainer.py --quick    # fewer repeats/epochs
    .venv/bin/python benchmarks/bench_trainer.py --workloads W1,W3 --repeats 7

Each workload trains the same architecture on the same data with the same
batch size and dtype (float32 unless --dtype). An "epoch" is what the product
does per epoch: one shuffled pass of mini-batch SGD steps, then the loss and
accuracy on the whole training set with the end-of-epoch weights (PyTorch does
the same evaluation under no_grad; scikit-learn's own fit loop reports its
running loss instead). Reported: median epochs/s over repeats, and the ratios.
For W4 also the achieved GFLOP/s against the single-thread matmul peak
measured here, and the share of the epoch that its matmuls alone take.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.nn.datasets import Dataset, make_dataset
from app.nn.training import EVAL_CHUNK_ELEMENTS, Trainer


@dataclass(frozen=True)
class Workload:
    name: str
    layers: list[int]
    n_samples: int
    batch_size: int | None
    activation: str
    task: str  # "binary", "multiclass", "regression"
    epochs: int  # per repeat (full mode)
    targets: str  # the targets, for the table


WORKLOADS = [
    Workload("W1", [2, 8, 8, 1], 500, 10, "tanh", "binary", 60, ">=8x torch, >=2.5x sklearn"),
    Workload("W2", [3, 16, 16, 2], 1000, None, "tanh", "regression", 400, ">=2x torch"),
    Workload("W3", [64, 128, 64, 10], 2000, 32, "relu", "multiclass", 10, ">=4x torch"),
    Workload("W4", [784, 512, 512, 10], 10000, 128, "relu", "multiclass", 2, ">=1.1x torch"),
]
LEARNING_RATE = 0.03


def make_data(w: Workload) -> Dataset:
    """The workload's training set (no test split: every sample trains)."""
    if w.name == "W1":
        return make_dataset({"kind": "circle", "n_samples": w.n_samples, "test_fraction": 0})
    if w.name == "W2":
        return make_dataset(
            {
                "kind": "teacher",
                "n_samples": w.n_samples,
                "teacher_layers": [3, 5, 2],
                "test_fraction": 0,
            }
        )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(w.n_samples, w.layers[0]))
    labels = (x @ rng.normal(size=(w.layers[0], w.layers[-1]))).argmax(axis=1)
    return Dataset(
        "custom",
        "classification",
        x,
        labels,
        x[:0],
        labels[:0],
        w.layers[0],
        w.layers[-1],
        w.layers[-1],
    )


# --- ours -------------------------------------------------------------------------------


def ours(w: Workload, data: Dataset, dtype: str) -> tuple[Callable[[], None], Callable[[], None]]:
    trainer = Trainer(
        data,
        hidden_layers=w.layers[1:-1],
        activation=w.activation,
        learning_rate=LEARNING_RATE,
        optimizer="sgd",
        batch_size=w.batch_size,
        dtype=dtype,
        seed=0,
    )

    def epoch() -> None:
        trainer.train_epoch()

    def evaluate() -> None:  # the end-of-epoch metrics alone
        trainer.evaluate()

    return epoch, evaluate


# --- PyTorch ------------------------------------------------------------------------------


def torch_epoch(
    w: Workload, data: Dataset, dtype: str
) -> tuple[Callable[[], None], Callable[[], None]]:
    import torch

    torch.set_num_threads(1)
    tdtype = getattr(torch, dtype)
    torch.manual_seed(0)
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[w.activation]
    mods: list[torch.nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(w.layers[:-1], w.layers[1:], strict=True)):
        mods.append(torch.nn.Linear(n_in, n_out))
        if i < len(w.layers) - 2:
            mods.append(act())
    model = torch.nn.Sequential(*mods).to(tdtype)
    x = torch.tensor(data.x_train, dtype=tdtype)
    if w.task == "binary":
        y = torch.tensor(data.y_train, dtype=tdtype)[:, None]
        loss_fn: torch.nn.Module = torch.nn.BCEWithLogitsLoss()
    elif w.task == "multiclass":
        y = torch.tensor(data.y_train, dtype=torch.int64)
        loss_fn = torch.nn.CrossEntropyLoss()
    else:
        y = torch.tensor(data.y_train, dtype=tdtype)
        loss_fn = torch.nn.MSELoss()
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    n = x.shape[0]
    gen = torch.Generator().manual_seed(0)
    bs = n if w.batch_size is None else w.batch_size

    def epoch() -> None:
        if bs < n:  # gather the shuffled set once, then slice: the fastest idiomatic loop
            perm = torch.randperm(n, generator=gen)
            xs, ys = x[perm], y[perm]
        else:
            xs, ys = x, y
        for start in range(0, n, bs):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xs[start : start + bs]), ys[start : start + bs])
            loss.backward()
            opt.step()
        evaluate()

    def evaluate() -> None:
        with torch.no_grad():  # end-of-epoch metrics, as the product reports them
            out = model(x)
            float(loss_fn(out, y))
            if w.task == "binary":
                float(((out[:, 0] >= 0) == (y[:, 0] > 0.5)).float().mean())
            elif w.task == "multiclass":
                float((out.argmax(1) == y).float().mean())

    return epoch, evaluate


# --- scikit-learn ---------------------------------------------------------------------------


def sklearn_fit(w: Workload, data: Dataset, dtype: str, epochs: int) -> Callable[[], None]:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPRegressor if w.task == "regression" else MLPClassifier
    x = data.x_train.astype(dtype)
    y = data.y_train

    def fit() -> None:
        model = cls(
            hidden_layer_sizes=tuple(w.layers[1:-1]),
            activation=w.activation,
            solver="sgd",
            momentum=0.0,
            nesterovs_momentum=False,
            learning_rate_init=LEARNING_RATE,
            alpha=0.0,
            batch_size=w.batch_size or len(x),
            max_iter=epochs,
            shuffle=True,
            tol=0.0,
            n_iter_no_change=epochs + 1,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the point
            model.fit(x, y)

    return fit


# --- measurement ----------------------------------------------------------------------------


def interleaved_rates(
    runs: list[tuple[Callable[[], None], float]], repeats: int
) -> list[list[float]]:
    """Per-repeat rates (work units/s) of each ``(run, units_per_run)``, the runs
    interleaved within every repeat so that load from other processes on this
    shared machine hits all of them alike; compare them pairwise per repeat."""
    for run, _ in runs:
        run()  # warm-up (allocations, BLAS buffers)
    rates: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for (run, units), out in zip(runs, rates, strict=True):
            t0 = time.perf_counter()
            run()
            out.append(units / (time.perf_counter() - t0))
    return rates


def repeat(fn: Callable[[], None], times: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(times):
            fn()

    return run


def paired(a: list[float], b: list[float]) -> float:
    """Median over repeats of a_i / b_i."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def matmul_peak_run(dtype: str) -> tuple[Callable[[], None], float]:
    """Four 1024³ matmuls, in GFLOP units (for the single-thread peak)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(1024, 1024)).astype(dtype)
    b = rng.normal(size=(1024, 1024)).astype(dtype)
    out = np.empty_like(a)
    return repeat(lambda: np.matmul(a, b, out=out), 4), 4 * 2 * 1024**3 / 1e9


def epoch_flops(w: Workload) -> float:
    """FLOPs of an epoch's matmuls: forward, weight gradients, deltas, plus the evaluation."""
    macs = [a * b for a, b in zip(w.layers[:-1], w.layers[1:], strict=True)]
    per_sample = 2 * (sum(macs) * 2 + sum(macs[1:]))  # forward + dW + deltas (not layer 0's)
    return w.n_samples * (per_sample + 2 * sum(macs))  # + the evaluation's forward


def epoch_matmuls(w: Workload, dtype: str) -> Callable[[], None]:
    """Exactly the matmuls (same shapes and transposes) one of our epochs makes, alone."""
    rng = np.random.default_rng(0)
    bs = w.batch_size or w.n_samples
    steps = [(bs, w.n_samples // bs)] + ([(w.n_samples % bs, 1)] if w.n_samples % bs else [])
    pairs = list(zip(w.layers[:-1], w.layers[1:], strict=True))
    # As app/nn/kernel.py: feature-major, each layer's bias a last column of its weight
    # block, multiplied by a row of ones under every layer's input.
    blocks = [rng.normal(size=(o, i + 1)).astype(dtype) for i, o in pairs]
    last = len(pairs) - 1

    def inputs(b: int) -> list[np.ndarray]:  # (n_l + 1, b), the output layer (n_out, b)
        return [rng.normal(size=(s + (i <= last), b)).astype(dtype) for i, s in enumerate(w.layers)]

    def step_for(b: int) -> Callable[[], None]:
        acts = inputs(b)
        if w.batch_size:  # mini-batches are transposed views of shuffled row-major samples
            acts[0] = np.ascontiguousarray(acts[0].T).T
        zs = [a[:s] for a, s in zip(acts, w.layers, strict=True)]
        gws = [np.empty_like(x) for x in blocks]

        def run() -> None:
            for layer, block in enumerate(blocks):
                np.matmul(block, acts[layer], out=zs[layer + 1])
            for layer in range(last, -1, -1):
                np.matmul(zs[layer + 1], acts[layer].T, out=gws[layer])
                if layer > 0:
                    np.matmul(blocks[layer][:, :-1].T, zs[layer + 1], out=zs[layer])

        return run

    runs = [(step_for(b), count) for b, count in steps]
    chunk = max(64, min(EVAL_CHUNK_ELEMENTS // max(w.layers), 65536))  # as the Trainer
    x_eval = inputs(w.n_samples)[0]
    ev = inputs(min(chunk, w.n_samples))
    ev_zs = [a[:s] for a, s in zip(ev, w.layers, strict=True)]

    def epoch() -> None:
        for run, count in runs:
            for _ in range(count):
                run()
        for start in range(0, w.n_samples, chunk):  # the evaluation's forward pass
            x = x_eval[:, start : start + chunk]
            for layer, block in enumerate(blocks):
                a = x if layer == 0 else ev[layer][:, : x.shape[1]]
                np.matmul(block, a, out=ev_zs[layer + 1][:, : x.shape[1]])

    return epoch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and epochs")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measurement")
    parser.add_argument("--workloads", default="W1,W2,W3,W4", help="comma-separated names")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--no-sklearn", action="store_true")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    scale = 0.25 if args.quick else 1.0
    chosen = [w for w in WORKLOADS if w.name in args.workloads.split(",")]

    out = sys.stdout.write
    with threadpool_limits(limits=1):
        import torch

        torch.set_num_threads(1)
        out(f"# bench_trainer — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n\n")
        out(f"command: `{' '.join([Path(sys.executable).name, *sys.argv])}`  \n")
        out(
            f"python {platform.python_version()}, numpy {np.__version__}, torch "
            f"{torch.__version__}, {os.cpu_count()} CPUs, dtype {args.dtype}, 1 BLAS thread, "
            f"median of {repeats} repeats; OPENBLAS_CORETYPE="
            f"{os.environ.get('OPENBLAS_CORETYPE', '-')}\n\n"
        )
        rows = []
        w4_info = ""
        for w in chosen:
            data = make_data(w)
            epochs = max(1, round(w.epochs * scale))
            (our_epoch, our_eval), (torch_ep, torch_eval) = (
                ours(w, data, args.dtype),
                torch_epoch(w, data, args.dtype),
            )
            runs = [
                (repeat(our_epoch, epochs), epochs),
                (repeat(torch_ep, epochs), epochs),
                (repeat(epoch_matmuls(w, args.dtype), epochs), epochs),
                (repeat(our_eval, epochs), epochs),
                (repeat(torch_eval, epochs), epochs),
            ]
            sk_epochs = max(epochs, 20)
            if w.name == "W1" and not args.no_sklearn:
                runs.append((sklearn_fit(w, data, args.dtype, sk_epochs), sk_epochs))
            if w.name == "W4":
                runs.append(matmul_peak_run(args.dtype))
            rates = interleaved_rates(runs, repeats)
            o, t, floor, o_eval, t_eval = rates[:5]
            # steps only = an epoch minus its evaluation, paired per repeat
            steps = [
                (1 / te - 1 / tv) / (1 / oe - 1 / ov)
                for oe, te, ov, tv in zip(o, t, o_eval, t_eval, strict=True)
            ]
            sk = rates[5] if w.name == "W1" and not args.no_sklearn else None
            rows.append(
                (
                    w,
                    statistics.median(o),
                    statistics.median(t),
                    paired(o, t),
                    statistics.median(steps),
                    None if sk is None else (statistics.median(sk), paired(o, sk)),
                    paired(o, floor),  # = (matmul time) / (our epoch time)
                )
            )
            if w.name == "W4":
                flops = epoch_flops(w)
                achieved = [flops * r / 1e9 for r in o]
                peak = rates[-1]
                w4_info = (
                    f"W4: {flops / 1e9:.1f} GFLOP of matmuls per epoch; ours ran at "
                    f"{statistics.median(achieved):.1f} GFLOP/s, "
                    f"{100 * paired(achieved, peak):.0f}% "
                    f"of the single-thread 1024³ matmul peak measured alongside "
                    f"({statistics.median(peak):.1f} GFLOP/s); the same matmuls timed alone take "
                    f"{100 * paired(o, floor):.0f}% of our epoch.\n"
                )
        out(
            "| workload | arch | samples | batch | ours ep/s | torch ep/s | ours/torch "
            "| ours/torch, steps only | sklearn ep/s | ours/sklearn | matmul floor | target |\n"
        )
        out("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for w, o, t, ratio, steps_ratio, sk, floor in rows:
            arch = "-".join(map(str, w.layers))
            skc = f"{sk[0]:.1f} | {sk[1]:.2f}x" if sk else "- | -"
            out(
                f"| {w.name} | {arch} {w.activation} | {w.n_samples} | {w.batch_size or 'full'} "
                f"| {o:.1f} | {t:.1f} | {ratio:.2f}x | {steps_ratio:.2f}x | {skc} "
                f"| {100 * floor:.0f}% | {w.targets} |\n"
            )
        out(
            "\nRatios are medians of per-repeat ratios (contenders interleaved in each repeat). "
            "*steps only*: each side's epoch minus its end-of-epoch evaluation (timed "
            "separately). *matmul floor*: the epoch's matmuls (same shapes, timed alone) as a "
            "share of our epoch.\n\n" + w4_info
        )


if __name__ == "__main__":
    main()
