"""The ``backprop-live`` command: ``serve`` (default) and ``train`` (headless).

``train`` goes through the same RunManager as the dashboard, so the run it
makes is a normal run in the database: a ``completed`` (or ``diverged``) run
with its metrics and a checkpoint, which ``serve`` then shows and ``/predict``
answers from.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from app.config import Settings, SettingsError
from app.nn.features import FEATURES

SUBCOMMANDS = ("serve", "train")
DATASET_CHOICES = ("circle", "xor", "gauss", "spiral", "moons", "plane", "sine", "teacher")
HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "linear")

# ---- argument parsing ----------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    """``"8,8"`` -> [8, 8]; ``""`` or ``"none"`` -> [] (no hidden layer)."""
    if text.strip().lower() in ("", "none"):
        return []
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 8,8, got {text!r}"
        ) from None


def _batch_size(text: str) -> int | None:
    if text.lower() == "full":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'full', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backprop-live",
        description="Watch a neural network learn: train multilayer perceptrons on a server "
        "and follow them live in the browser. Without a subcommand, `serve` runs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{serve,train}")

    serve = sub.add_parser(
        "serve",
        help="run the web server (dashboard + JSON API)",
        description="Run the web server: the dashboard at / and the JSON API under /api. "
        "Settings also come from BACKPROP_LIVE_* environment variables; options win.",
    )
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8000)")
    serve.add_argument("--db", type=Path, help="SQLite database file (default backprop-live.db)")
    serve.add_argument(
        "--token",
        help="access token required by every /api call and page (default: "
        "BACKPROP_LIVE_TOKEN; prefer the variable: command lines are visible to other users)",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without a token (anyone who can reach the port "
        "controls the server)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's log level (default info)",
    )

    train = sub.add_parser(
        "train",
        help="train one run headless and store it in the database",
        description="Train one run without the server, with a progress bar, and print its "
        "final metrics. The run is stored in the database like any other: `serve` on the "
        "same --db shows it, with its metrics and weights (a server already running on "
        "that database lists it once it has finished). Ctrl-C stops it (saved as "
        "`stopped`; it can be continued from the dashboard).",
    )
    train.add_argument("--db", type=Path, help="SQLite database file (default backprop-live.db)")
    train.add_argument("--name", help="run name, at most 80 characters (default: generated)")
    data = train.add_argument_group("dataset")
    data.add_argument(
        "--dataset", default="spiral", choices=DATASET_CHOICES, help="dataset kind (default spiral)"
    )
    data.add_argument("--n-samples", type=int, help="samples, 10-100000 (default 400)")
    data.add_argument("--noise", type=float, help="noise, 0-1 (default 0.1)")
    data.add_argument(
        "--test-fraction",
        type=float,
        help="share of samples held out for testing, 0-0.9 (default 0.2)",
    )
    data.add_argument("--n-classes", type=int, help="classes for gauss and spiral, 2-8 (default 2)")
    data.add_argument("--data-seed", type=int, help="the dataset's seed (default 0)")
    data.add_argument(
        "--teacher-layers",
        type=_int_list,
        help="teacher network layer sizes, e.g. 3,5,2 (teacher only)",
    )
    data.add_argument(
        "--teacher-activation",
        choices=HIDDEN_ACTIVATIONS,
        help="teacher activation (teacher only; default sigmoid)",
    )
    data.add_argument(
        "--teacher-weight-scale",
        type=float,
        help="multiplies the teacher's weights, 0.1-10 (teacher only; default 1)",
    )
    net = train.add_argument_group("network and training")
    net.add_argument(
        "--features",
        type=lambda text: [part.strip() for part in text.split(",") if part.strip()],
        help=f"input features of 2-D data, from {','.join(FEATURES)} (default: x1,x2 as given)",
    )
    net.add_argument(
        "--weights-only",
        action="store_true",
        help="the article's shortcut: errors passed back through the weights alone "
        "(needs --loss mse and a sigmoid or linear output)",
    )
    net.add_argument(
        "--hidden",
        type=_int_list,
        default=[8, 8],
        help="hidden layer sizes, comma-separated, e.g. 8,8; 'none' for none (default 8,8)",
    )
    net.add_argument(
        "--activation",
        default="tanh",
        choices=HIDDEN_ACTIVATIONS,
        help="hidden-layer activation (default tanh)",
    )
    net.add_argument(
        "--output-activation",
        choices=("sigmoid", "softmax", "linear"),
        help="output activation (default: chosen by the task)",
    )
    net.add_argument(
        "--loss", choices=("mse", "cross_entropy"), help="loss (default: chosen by the task)"
    )
    net.add_argument(
        "--lr",
        "--learning-rate",
        dest="learning_rate",
        metavar="LR",
        type=float,
        default=0.03,
        help="learning rate, 0 < lr ≤ 10 (default 0.03)",
    )
    net.add_argument(
        "--optimizer",
        default="sgd",
        choices=("sgd", "momentum", "adam"),
        help="optimizer (default sgd)",
    )
    net.add_argument(
        "--momentum",
        type=float,
        default=0.9,
        help="momentum for the momentum optimizer, 0 ≤ m < 1 (default 0.9)",
    )
    net.add_argument(
        "--batch-size",
        type=_batch_size,
        default=10,
        help="mini-batch size, or 'full' for full batch (default 10)",
    )
    net.add_argument(
        "--epochs", type=int, default=1000, help="epochs to train, 1-10000000 (default 1000)"
    )
    net.add_argument("--l1", type=float, default=0.0, help="L1 penalty ≥ 0 (default 0)")
    net.add_argument("--l2", type=float, default=0.0, help="L2 penalty ≥ 0 (default 0)")
    net.add_argument("--no-bias", action="store_true", help="layers without biases")
    net.add_argument(
        "--init",
        default="xavier",
        choices=("xavier", "he", "uniform", "normal"),
        help="weight initialisation (default xavier)",
    )
    net.add_argument("--seed", type=int, default=0, help="weight/shuffle seed ≥ 0 (default 0)")
    net.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "float64"),
        help="the trainer's arithmetic (default float32)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(subparser=train)
    return parser


def _run_body(args: argparse.Namespace) -> dict[str, Any]:
    """The POST /api/runs body the options describe (dataset fields only when given)."""
    dataset: dict[str, Any] = {"kind": args.dataset}
    for option, field in (
        ("n_samples", "n_samples"),
        ("noise", "noise"),
        ("test_fraction", "test_fraction"),
        ("n_classes", "n_classes"),
        ("data_seed", "seed"),
        ("teacher_layers", "teacher_layers"),
        ("teacher_activation", "teacher_activation"),
        ("teacher_weight_scale", "teacher_weight_scale"),
    ):
        value = getattr(args, option)
        if value is not None:
            dataset[field] = value
    body: dict[str, Any] = {
        "dataset": dataset,
        "hidden_layers": args.hidden,
        "activation": args.activation,
        "output_activation": args.output_activation,
        "loss": args.loss,
        "learning_rate": args.learning_rate,
        "optimizer": args.optimizer,
        "momentum": args.momentum,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "l1": args.l1,
        "l2": args.l2,
        "use_bias": not args.no_bias,
        "init": args.init,
        "seed": args.seed,
        "dtype": args.dtype,
        "features": args.features,
        "error_propagation": "weights_only" if args.weights_only else "chain_rule",
        "start": True,
    }
    if args.name is not None:
        body["name"] = args.name
    return body


def _option_error(exc: ValidationError) -> str:
    """Pydantic errors in the CLI's words: --option-name: message."""
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
        # Discriminated unions add the kind as a path element: drop it.
        loc = [part for part in loc if part not in DATASET_CHOICES]
        name = loc[-1] if loc else "options"
        option = {
            "hidden_layers": "hidden",
            "learning_rate": "lr",
            "seed": "data-seed" if loc[:1] == ["dataset"] else "seed",
            "use_bias": "no-bias",
        }.get(name, name)
        lines.append(f"--{option.replace('_', '-')}: {error['msg']}")
    return "; ".join(lines)


# ---- commands ------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import SetupError, create_app

    given = (("host", args.host), ("port", args.port), ("db", args.db), ("token", args.token))
    overrides = {k: v for k, v in given if v}
    try:
        settings = Settings.from_env(**overrides)
    except SettingsError as exc:
        sys.stderr.write(f"backprop-live serve: error: {exc}\n")
        return 2
    if not settings.token and not is_loopback(settings.host):
        if not args.insecure:
            sys.stderr.write(
                f"backprop-live serve: error: --host {settings.host} is reachable from other "
                "machines, and anyone who reaches it could run and delete training jobs. Set an "
                "access token (BACKPROP_LIVE_TOKEN=... or --token ...), or pass --insecure to "
                "serve it without one.\n"
            )
            return 2
        sys.stderr.write(
            f"backprop-live serve: warning: serving on {settings.host} without a token "
            "(--insecure): anyone who can reach this port controls the server.\n"
        )
    try:
        app = create_app(settings)
    except SetupError as exc:
        sys.stderr.write(f"backprop-live: {exc}\n")
        return 1
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        # Open SSE streams never end on their own: don't wait for them forever.
        timeout_graceful_shutdown=3,
    )
    return 0


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from app.runs import ProblemError
    from app.runs.models import RunCreate

    try:
        body = RunCreate.model_validate(_run_body(args))
    except ValidationError as exc:
        _fail(parser, _option_error(exc))
    try:
        settings = Settings.from_env(**({"db": args.db} if args.db else {}))
    except SettingsError as exc:
        _fail(parser, str(exc))
    try:
        run, interrupted = asyncio.run(_train(settings, body, progress=not args.quiet))
    except ProblemError as exc:
        where = f"--{exc.field.replace('_', '-')}: " if exc.field else ""
        _fail(parser, f"{where}{exc.detail}")
    sys.stdout.write(_summary(run, settings.db))
    if interrupted:
        return 130  # the shell's convention for "ended by Ctrl-C"
    return 0 if run["status"] == "completed" else 1


def _fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.exit(2, f"backprop-live train: error: {message}\n")


async def _train(settings: Settings, body: Any, *, progress: bool) -> tuple[dict[str, Any], bool]:
    """Create and start the run, follow it to the end; (Run, whether Ctrl-C stopped it)."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    from app.runs.manager import RunManager
    from app.runs.models import RunStatus
    from app.storage.store import Store

    store = Store(settings.db)
    manager = RunManager(store, settings)
    await manager.startup()
    try:
        view = await manager.create(body)
        hub = manager.hub(view.id)
        total = int(view.config["epochs"])
        interrupted = False
        with tqdm(total=total, unit="epoch", disable=not progress, dynamic_ncols=True) as bar:
            version = hub.version
            try:
                while not RunStatus(hub.status).is_final:
                    version = await hub.wait(version, 1.0)
                    bar.update(hub.last_epoch - bar.n)
                    if hub.run_view.train_loss is not None:
                        bar.set_postfix(train_loss=f"{hub.run_view.train_loss:.4g}", refresh=False)
            except asyncio.CancelledError:
                # Ctrl-C: keep what was learned, as a `stopped` run.
                interrupted = True
                await manager.stop(view.id)
            bar.update(hub.last_epoch - bar.n)
        return manager.get(view.id).public(), interrupted
    finally:
        await manager.shutdown()
        store.close()


def _summary(run: dict[str, Any], db: Path) -> str:
    def number(value: Any) -> str:
        return "—" if value is None else f"{value:.6g}"

    lines = [
        f"run {run['id']} ({run['name']}): {run['status']} at epoch {run['epoch']}",
        f"  train_loss {number(run['train_loss'])}  test_loss {number(run['test_loss'])}",
    ]
    if run["task"] == "classification":
        lines.append(
            f"  train_accuracy {number(run['train_accuracy'])}  "
            f"test_accuracy {number(run['test_accuracy'])}"
        )
    if run.get("message"):
        lines.append(f"  {run['message']}")
    lines.append(f"stored in {db}; view it with: backprop-live serve --db {db}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # `serve` is the default subcommand: `backprop-live --port 9000` serves.
    if not arguments or (arguments[0] not in SUBCOMMANDS and arguments[0] not in ("-h", "--help")):
        arguments.insert(0, "serve")
    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.command == "train":
        return train(args, args.subparser)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
