"""cli/common.py — what the subcommands share: the user-error type, option helpers, optimizers,
the progress bar, and the optional plotting import. Checkpoints are in checkpoints.py.

Nothing here differentiates anything: training code in forecast.py and chars.py calls
`loss.backward()` and an optimizer from `tinygrad_rnn.optim`, exactly as a user script would.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..nn.module import Parameter
from ..optim import Optimizer

PLOT_HINT = 'pip install "tinygrad_rnn[plot]"'


class CLIError(Exception):
    """A problem with the user's input or files: printed as one line on stderr, exit status 2."""


# ---------------------------------------------------------------- argparse value types


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def _int_at_least(text: str, low: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number greater than 0, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    value = _finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1 (exclusive), got {text!r}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


CELLS = ("rnn", "lstm", "gru")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
DTYPES = ("float32", "float64")
SCHEDULES = ("cosine", "constant")


def add_model_options(parser: argparse.ArgumentParser, *, cell: str, hidden: int, layers: int) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--cell", choices=CELLS, default=cell, help=f"recurrent layer (default: {cell})")
    group.add_argument("--hidden", type=positive_int, default=hidden, help=f"hidden units (default: {hidden})")
    group.add_argument("--layers", type=positive_int, default=layers, help=f"stacked layers (default: {layers})")
    group.add_argument("--dtype", choices=DTYPES, default="float64", help="parameter dtype (default: float64)")


def model_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The options that fix a model's parameters and optimizer: a resumed run must repeat them."""
    return {name: getattr(args, name) for name in ("cell", "hidden", "layers", "dtype", "optimizer")}


def add_training_options(
    parser: argparse.ArgumentParser,
    *,
    lr: float,
    batch: int,
    bptt: int | None,
    clip: float = 1.0,
    compile: bool = True,
) -> argparse._ArgumentGroup:
    group = parser.add_argument_group("training")
    group.add_argument("--lr", type=positive_float, default=lr, help=f"learning rate (default: {lr})")
    group.add_argument(
        "--optimizer", choices=OPTIMIZERS, default="adam", help="optimizer from tinygrad_rnn.optim (default: adam)"
    )
    group.add_argument("--batch", type=positive_int, default=batch, help=f"sequences per step (default: {batch})")
    bptt_default = "the whole window" if bptt is None else str(bptt)
    group.add_argument(
        "--bptt",
        type=positive_int,
        default=bptt,
        help=f"truncation length: gradients flow back at most this many time steps (default: {bptt_default})",
    )
    group.add_argument(
        "--clip",
        type=nonnegative_float,
        default=clip,
        help=f"clip the gradient norm to this value; 0 turns clipping off (default: {clip})",
    )
    add_seed_option(group, "random seed, for reproducible runs")
    group.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=compile,
        help="replay the forward and backward of each training step with tg.compile instead of running it "
        f"eagerly; the same results to the bit (default: {'on' if compile else 'off'})",
    )
    return group


def add_seed_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str) -> None:
    parser.add_argument("--seed", type=nonnegative_int, default=0, help=f"{what}, an integer >= 0 (default: 0)")


def add_checkpoint_options(
    parser: argparse.ArgumentParser, *, default: str, save_every: int, what: str
) -> argparse._ArgumentGroup:
    """--checkpoint, --resume, --force and --save-every: the rules in checkpoints.py, told in --help."""
    group = parser.add_argument_group(
        "checkpoint",
        "A run never replaces a checkpoint it did not write: to train again into an existing file, continue "
        "it with --resume or replace it with --force (or give another --checkpoint). Ctrl-C finishes the "
        "current step, saves and exits; training that diverges stops and keeps the last checkpoint saved.",
    )
    group.add_argument("--checkpoint", metavar="FILE", default=default, help=f"where to save (default: {default})")
    group.add_argument(
        "--resume",
        metavar="FILE",
        nargs="?",
        const=True,
        help=f"continue training from a checkpoint (default: the --checkpoint file) for {what} more; "
        "needs the same model options",
    )
    group.add_argument("--force", action="store_true", help="replace an existing --checkpoint file")
    group.add_argument(
        "--save-every",
        type=nonnegative_int,
        default=save_every,
        metavar="N",
        help=f"also save every N optimizer steps; 0 saves only at the end (default: {save_every})",
    )
    return group


# ---------------------------------------------------------------- training helpers


def divergence_advice(lr: float, clip: float) -> str:
    clipping = "turn on gradient clipping with --clip 1" if clip == 0 else f"a smaller --clip (this run used {clip:g})"
    return f"try a smaller --lr (this run used {lr:g}) or {clipping}"


def make_optimizer(name: str, params: list[Parameter], lr: float) -> Optimizer:
    from .. import optim

    classes: dict[str, Callable[..., Optimizer]] = {
        "adam": optim.Adam,
        "sgd": optim.SGD,
        "rmsprop": optim.RMSprop,
        "adagrad": optim.Adagrad,
    }
    return classes[name](params, lr=lr)


def add_schedule_option(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="cosine",
        help="learning rate over the run: cosine decays --lr to 0 by this run's last step; constant keeps it "
        "(default: cosine)",
    )


def cosine_lr(peak: float, step: int, total: int) -> float:
    """peak · (1 + cos(π · step / total)) / 2: the full rate at step 0, decaying smoothly to 0 at the end."""
    return peak * 0.5 * (1.0 + float(np.cos(np.pi * step / max(total, 1))))


def set_lr(optimizer: Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def compiled(fn: Callable[..., Any], enabled: bool) -> Callable[..., Any]:
    """`fn` recorded once and replayed by tg.compile, or `fn` itself (--no-compile). The optimizer step,
    zero_grad, clipping and `.item()` stay outside `fn`: tg.compile refuses them inside."""
    if not enabled:
        return fn
    from ..compile import compile

    return compile(fn)


def clip_gradients(params: list[Parameter], max_norm: float) -> None:
    if max_norm > 0:
        from ..nn.utils import clip_grad_norm_

        clip_grad_norm_(params, max_norm)


# ---------------------------------------------------------------- progress


def progress_bar(total: int, desc: str, initial: int = 0) -> Any:
    """A tqdm bar on stderr showing steps/s; hidden when stderr is not a terminal (logs, pipes, tests)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, disable=None, mininterval=0.2)


def say(message: str) -> None:
    """Print a line to stdout without breaking an active progress bar."""
    from tqdm import tqdm

    tqdm.write(message)


def say_saved(what: str, path: str, detail: str = "") -> None:
    """Every command words its saved files the same way: `checkpoint saved to f.npz (step 400)`."""
    say(f"{what} saved to {path}" + (f" ({detail})" if detail else ""))


# ---------------------------------------------------------------- plotting (optional extra)


def pyplot() -> Any:
    """matplotlib.pyplot with a file-only backend, or a CLIError that says how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise CLIError(f"--plot needs matplotlib, which is not installed; install it with: {PLOT_HINT}") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_plot_path(path: str | None) -> None:
    """Fail before training, not after, when --plot cannot work."""
    if path is None:
        return
    check_regular_file("--plot", path)
    plt = pyplot()
    suffix = Path(path).suffix.lower().lstrip(".")
    supported = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    if suffix not in supported:
        raise CLIError(f"--plot {path}: unknown image type {suffix!r}; use one of: {', '.join(sorted(supported))}")
    check_parent("--plot", path)


def save_figure(figure: Any, path: str) -> None:
    """Write the image atomically, like checkpoints: a temporary file in the same folder, then a rename."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        figure.savefig(tmp, format=target.suffix.lstrip(".").lower(), dpi=110)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def check_regular_file(option: str, path: str) -> None:
    """A save renames a new file over `path`: refuse folders and devices (as root, even /dev/null would go)."""
    target = Path(path)
    if target.is_dir():
        raise CLIError(f"{option} {path} is a folder; give a file name")
    if target.exists() and not target.is_file():
        raise CLIError(f"{option} {path} is not a regular file; give a file name")


def check_parent(option: str, path: str) -> None:
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise CLIError(f"{option} {path}: the folder {parent} does not exist")


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
