"""The only code that runs in a training child process (spawn/forkserver, never fork).

One duplex `multiprocessing` connection carries the messages of `worker_messages.py`,
pickled: `Stop`, `Shutdown` and `SetLive` to the child (read between batches and
between epochs); a `Frame` at most every `frame_interval` s and one `Final` from it.

A stop that arrives mid-epoch abandons the epoch: the trainer is put back to
its state at the epoch's start (so the reported epoch is final and a resume is
bit-for-bit the same as never having stopped). To keep that cheap, the
epoch-start state is only saved when epochs are slow enough for a stop to
matter; fast epochs simply finish.
"""

from __future__ import annotations

import os

# BLAS must be pinned before NumPy loads (forkserver/spawn children import this first);
# threadpool_limits below covers an already-loaded library too.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import contextlib  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from multiprocessing.connection import Connection  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from app.nn.datasets import Dataset, make_dataset  # noqa: E402
from app.nn.features import with_features  # noqa: E402
from app.nn.metrics import EpochMetrics  # noqa: E402
from app.nn.training import Trainer, TrainerState  # noqa: E402
from app.runs.controls import LARGE_NET_PARAMS, TrainingControls, snapshot_due  # noqa: E402
from app.runs.run_config import RunConfig  # noqa: E402
from app.runs.worker_messages import (  # noqa: E402
    Final,
    Frame,
    Reason,
    SetLive,
    Shutdown,
    Stop,
    WorkerJob,
)
from app.storage.store import Checkpoint, Snapshot  # noqa: E402

# PATCHable fields the worker's TrainingControls take (from the next epoch on).
CONTROL_FIELDS = ("learning_rate", "lr_schedule", "target_loss", "early_stopping")
# An epoch slower than this may be abandoned mid-way by a stop (see module docstring).
ABORTABLE_EPOCH_SECONDS = 0.05
LARGE_NET_PARAMS_INTERVAL = 0.5  # seconds between weight updates of a large net


WORKER_NICENESS = 10


def trainer_kwargs(config: RunConfig) -> dict[str, Any]:
    """Trainer keyword arguments from a run's public config (head already resolved)."""
    return {
        "hidden_layers": list(config.hidden_layers),
        "activation": config.activation,
        "output_activation": config.output_activation,
        "loss": config.loss,
        "learning_rate": float(config.learning_rate),
        "optimizer": config.optimizer,
        "momentum": float(config.momentum),
        "batch_size": config.batch_size,
        "l1": float(config.l1),
        "l2": float(config.l2),
        "use_bias": bool(config.use_bias),
        "init": config.init,
        "seed": int(config.seed),
        "dtype": config.dtype,
        "error_propagation": config.error_propagation,
    }


def dataset_spec(config: RunConfig, custom: Mapping[str, np.ndarray] | None) -> dict[str, Any]:
    """The run's dataset spec as `make_dataset` takes it (custom points put back in)."""
    spec = dict(config.dataset)
    if spec["kind"] == "custom":
        if custom is None:
            raise ValueError("the custom dataset's x/y are missing")
        spec["x"], spec["y"] = custom["x"], custom["y"]
    return spec


def build_trainer(
    config: RunConfig,
    custom: Mapping[str, np.ndarray] | None,
    data: Dataset | None = None,
) -> Trainer:
    """A fresh Trainer (weights from the seed) for a run's config."""
    if data is None:
        data = make_dataset(dataset_spec(config, custom))
    return Trainer(with_features(data, config.features), **trainer_kwargs(config))


def state_payload(state: TrainerState, controls: TrainingControls | None = None) -> Checkpoint:
    """The trainer's state (and the training controls' part of it) as a checkpoint."""
    arrays, meta = dict(state.arrays), dict(state.meta)
    if controls is not None:
        extra_arrays, extra_meta = controls.extras()
        arrays.update(extra_arrays)
        meta.update(extra_meta)
    return Checkpoint(int(meta["epoch"]), arrays, meta)


class _History:
    """The weight snapshots this worker keeps, sent with the next frame (API.md v1.1)."""

    def __init__(self, trainer: Trainer, job: WorkerJob) -> None:
        self.last_kept: int | None = job.last_snapshot
        self.epochs = int(job.config.epochs)
        self.n_params = int(trainer.network.n_params)
        self.pending: list[Snapshot] = []
        if self.last_kept is None and trainer.epoch == 0:
            self.keep(trainer)  # epoch 0: the weights it starts from

    def keep(self, trainer: Trainer) -> None:
        self.pending.append((int(trainer.epoch), trainer.network.params.copy()))
        self.last_kept = int(trainer.epoch)

    def after_epoch(self, trainer: Trainer) -> None:
        if snapshot_due(int(trainer.epoch), self.last_kept, self.n_params, self.epochs):
            self.keep(trainer)

    def at_end(self, trainer: Trainer) -> None:
        """The last epoch of a stop, completion or divergence is always kept."""
        if self.last_kept != trainer.epoch:
            self.keep(trainer)

    def take(self) -> tuple[Snapshot, ...]:
        out, self.pending = tuple(self.pending), []
        return out


class _Interrupt(Exception):
    """A stop arrived mid-epoch."""


class _Control:
    """The child's side of the control pipe; also hooked into the optimizer so it is
    polled after every batch."""

    def __init__(self, conn: Connection, epochs: int, target: int, eps: float | None) -> None:
        self.conn = conn
        self.epochs = epochs
        self.target = target
        self.max_epochs_per_second = eps
        self.controls_changed: dict[str, Any] = {}  # live training controls (and the base rate)
        self.penalties: dict[str, float] = {}  # new l1 / l2, applied between batches
        self.stop_reason: Reason | None = None
        self.speed_changed = False
        self.abortable = False

    def poll(self, timeout: float = 0.0) -> None:
        """Read every pending control message (waiting up to `timeout` for the first)."""
        while self.stop_reason is None and self.conn.poll(timeout):
            timeout = 0.0
            try:
                msg = self.conn.recv()
            except EOFError:
                self.stop_reason = "shutdown"  # the parent is gone: nobody to report to
                return
            if isinstance(msg, Stop):
                self.stop_reason = "stopped"
            elif isinstance(msg, Shutdown):
                self.stop_reason = "shutdown"
            elif isinstance(msg, SetLive):
                changes = msg.changes
                self.controls_changed.update(
                    {k: v for k, v in changes.items() if k in CONTROL_FIELDS}
                )
                if "epochs" in changes:
                    self.epochs = int(changes["epochs"])
                for name in ("l1", "l2"):
                    if name in changes:
                        self.penalties[name] = float(changes[name])
                if "max_epochs_per_second" in changes:
                    self.max_epochs_per_second = changes["max_epochs_per_second"]
                    self.speed_changed = True

    def after_batch(self) -> None:
        if self.abortable:
            self.poll()  # returns at once when a signal already set stop_reason
            if self.stop_reason is not None:
                raise _Interrupt


class _PollingOptimizer:
    """Delegates to the trainer's optimizer and polls the control pipe after each step."""

    def __init__(self, inner: Any, control: _Control) -> None:
        self._inner = inner
        self._control = control

    def step(self, params: Any, grads: Any, lr: float) -> None:
        self._inner.step(params, grads, lr)
        self._control.after_batch()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _hook_optimizer(trainer: Trainer, control: _Control) -> None:
    """The Trainer calls `self.optimizer.step` once per batch (the Optimizer protocol):
    wrapping it is how a stop gets in between two batches. Without it a stop would
    still work, one epoch later."""
    trainer.optimizer = _PollingOptimizer(trainer.optimizer, control)


def _handle_signals(control: _Control) -> None:
    """Ctrl-C reaches the whole process group: the server decides what happens to the
    run, not the terminal. SIGTERM to the worker (e.g. a service manager stopping
    every process of the server) checkpoints and ends like a server shutdown.
    Only a process's main thread may set handlers: a worker running in a thread (a Ray
    actor's) leaves the process's signals to its host."""
    if threading.current_thread() is not threading.main_thread():
        return

    def on_term(signum: int, frame: Any) -> None:
        control.stop_reason = control.stop_reason or "shutdown"

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_term)


def run_worker(conn: Connection, job: WorkerJob) -> None:
    """Entry point of the child: train `job`, talking over `conn` (module docstring)."""
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        threadpool_limits(limits=1)
    except Exception:  # pinning is an optimisation; never fail a run over it
        pass
    # Training yields to the server: with every core busy training, the event loop
    # (API, streams, the dashboard) must still answer at once.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    trainer: Trainer | None = None
    pending: list[EpochMetrics] = []
    try:
        config = job.config
        control = _Control(conn, int(config.epochs), int(job.target), config.max_epochs_per_second)
        _handle_signals(control)
        trainer = build_trainer(config, job.custom)
        controls = TrainingControls.of(config)
        if job.state is not None:
            arrays, meta = job.state.arrays, job.state.meta
            trainer.load_state(TrainerState(arrays=arrays, meta=meta))
            controls.load(arrays, meta)
        elif job.initial_params is not None:  # weights edited before the first epoch
            trainer.network.params[...] = job.initial_params
        _hook_optimizer(trainer, control)
        history = _History(trainer, job)
        reason, message = _train(trainer, control, controls, history, conn, job, pending)
    except BaseException as exc:  # report, never die silently
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        _send_final(conn, trainer, pending, "error", f"training failed: {detail}", None)
        return
    if reason != "early_stopped":  # its weights are the best epoch's, not the last one's
        history.at_end(trainer)
    _send_final(conn, trainer, pending, reason, message, controls, history.take())


def _train(
    trainer: Trainer,
    control: _Control,
    controls: TrainingControls,
    history: _History,
    conn: Connection,
    job: WorkerJob,
    pending: list[EpochMetrics],
) -> tuple[Reason, str | None]:
    frame_interval = float(job.frame_interval)
    checkpoint_interval = float(job.checkpoint_interval)
    n_params = int(trainer.network.n_params)
    params_interval = frame_interval if n_params <= LARGE_NET_PARAMS else LARGE_NET_PARAMS_INTERVAL
    now = time.monotonic()
    last_frame = last_params = last_checkpoint = now
    pace_start, pace_epochs = now, 0
    slow = True  # unknown speed: the first epoch may be abandoned
    while True:
        control.poll()
        if control.stop_reason is not None:
            return control.stop_reason, None
        if control.controls_changed:
            controls.update(control.controls_changed)
            control.controls_changed = {}
        if control.penalties:
            penalties = {"l1": trainer.l1, "l2": trainer.l2, **control.penalties}
            trainer.set_penalties(penalties["l1"], penalties["l2"])
            control.penalties = {}
        if control.speed_changed:
            pace_start, pace_epochs, control.speed_changed = time.monotonic(), 0, False
        if trainer.epoch >= control.epochs:
            return "completed", None
        if trainer.epoch >= control.target:
            return "target", None

        trainer.learning_rate = controls.rate_for(trainer.epoch + 1)
        start_state = trainer.state() if slow else None
        control.abortable = start_state is not None
        t0 = time.monotonic()
        try:
            metrics = trainer.train_epoch()
        except _Interrupt:
            control.abortable = False
            if start_state is not None:
                trainer.load_state(start_state)
            return control.stop_reason or "stopped", None
        control.abortable = False
        now = time.monotonic()
        slow = now - t0 > ABORTABLE_EPOCH_SECONDS
        pending.append(metrics.finite())
        if metrics.diverged:
            return "diverged", (
                f"training diverged at epoch {metrics.epoch}: the loss became non-finite; "
                "the last finite weights are kept"
            )
        history.after_epoch(trainer)
        ended = controls.after_epoch(metrics, trainer.network.params)
        if ended is not None:
            if ended[0] == "early_stopped":
                controls.restore_best(trainer.network.params)
            return ended

        eps = control.max_epochs_per_second
        due = None
        if eps:
            pace_epochs += 1
            due = pace_start + pace_epochs / float(eps)
        # At most ~every frame_interval; but when pacing would hold these epochs back past
        # the next frame time, send them now rather than after the wait.
        if now - last_frame >= frame_interval or (
            due is not None and due - last_frame >= frame_interval
        ):
            with_params = now - last_params >= params_interval
            with_state = now - last_checkpoint >= checkpoint_interval
            conn.send(
                Frame(
                    epoch=int(trainer.epoch),
                    metrics=tuple(pending),
                    params=trainer.network.params.copy() if with_params else None,
                    state=state_payload(trainer.state(), controls) if with_state else None,
                    snapshots=history.take(),
                )
            )
            pending.clear()
            last_frame = now
            if with_params:
                last_params = now
            if with_state:
                last_checkpoint = now

        if due is not None:
            while control.stop_reason is None and not control.speed_changed:
                remaining = due - time.monotonic()
                if remaining <= 0:
                    break
                control.poll(min(remaining, 0.1))  # short: a SIGTERM is seen promptly
            if time.monotonic() - due > 1.0:  # far behind (slow epochs): do not burst later
                pace_start, pace_epochs = time.monotonic(), 0


def _send_final(
    conn: Connection,
    trainer: Trainer | None,
    pending: list[EpochMetrics],
    reason: Reason,
    message: str | None,
    controls: TrainingControls | None,
    snapshots: tuple[Snapshot, ...] = (),
) -> None:
    """The last message; with the full state (and the controls' part of it) unless
    `controls` is None (a failed run: its state may be broken)."""
    params: np.ndarray | None = None
    state: Checkpoint | None = None
    if trainer is not None:
        try:
            params = trainer.network.params.copy()
            if controls is not None:
                state = state_payload(trainer.state(), controls)
        except Exception:  # a broken trainer: report the reason without its state
            params = state = None
    final = Final(
        epoch=int(trainer.epoch) if trainer is not None else None,
        reason=reason,
        message=message,
        metrics=tuple(pending),
        params=params,
        state=state,
        snapshots=snapshots,
    )
    try:
        conn.send(final)
    except (BrokenPipeError, EOFError, OSError):
        pass  # the parent is gone
    finally:
        conn.close()
