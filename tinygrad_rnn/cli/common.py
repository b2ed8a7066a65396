"""cli/common.py — what the subcommands share: the user-error type, option helpers, optimizers,
the progress bar, checkpoints with their settings, and the optional plotting import.

Nothing here differentiates anything: training code in forecast.py and chars.py calls
`loss.backward()` and an optimizer from `tinygrad_rnn.optim`, exactly as a user script would.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..nn.module import Module, Parameter
from ..optim import Optimizer

CHECKPOINT_FORMAT = 1
CONFIG_KEY = "cli.config"  # the run's settings: JSON text in a 0-d string array (no pickle)
OPTIMIZER_KEY = "optimizer"  # the optimizer's state_dict, saved as optimizer.<its names>
PLOT_HINT = 'pip install "tinygrad_rnn[plot]"'


class CLIError(Exception):
    """A problem with the user's input or files: printed as one line on stderr, exit status 2."""


# ---------------------------------------------------------------- argparse value types


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
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


def add_training_options(
    parser: argparse.ArgumentParser, *, lr: float, batch: int, bptt: int | None, clip: float = 1.0
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
    group.add_argument("--seed", type=int, default=0, help="random seed, for reproducible runs (default: 0)")
    return group


# ---------------------------------------------------------------- training helpers


def check_finite(loss: float, step: int) -> None:
    if not np.isfinite(loss):
        raise CLIError(f"training diverged: the loss is {loss} at step {step}; try a smaller --lr or a --clip value")


def make_optimizer(name: str, params: list[Parameter], lr: float) -> Optimizer:
    from .. import optim

    classes: dict[str, Callable[..., Optimizer]] = {
        "adam": optim.Adam,
        "sgd": optim.SGD,
        "rmsprop": optim.RMSprop,
        "adagrad": optim.Adagrad,
    }
    return classes[name](params, lr=lr)


def cosine_lr(peak: float, step: int, total: int) -> float:
    """peak · (1 + cos(π · step / total)) / 2: the full rate at step 0, decaying smoothly to 0 at the end."""
    return peak * 0.5 * (1.0 + float(np.cos(np.pi * step / max(total, 1))))


def set_lr(optimizer: Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


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
    plt = pyplot()
    suffix = Path(path).suffix.lower().lstrip(".")
    supported = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    if suffix not in supported:
        raise CLIError(f"--plot {path}: unknown image type {suffix!r}; use one of: {', '.join(sorted(supported))}")
    _check_parent("--plot", path)


def save_figure(figure: Any, path: str) -> None:
    """Write the image atomically, like checkpoints: a temporary file in the same folder, then a rename."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        figure.savefig(tmp, format=target.suffix.lstrip(".").lower(), dpi=110)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _check_parent(option: str, path: str) -> None:
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise CLIError(f"{option} {path}: the folder {parent} does not exist")


# ---------------------------------------------------------------- checkpoints


def encode_config(config: Mapping[str, Any]) -> np.ndarray:
    """The settings as a 0-d string array: readable with plain `np.load(path)["cli.config"]`, no pickle."""
    return np.array(json.dumps(dict(config), sort_keys=True))


def check_checkpoint_path(path: str) -> None:
    """Fail before training, not after, when the checkpoint could not be written."""
    if Path(path).is_dir():
        raise CLIError(f"--checkpoint {path} is a folder; give a file name such as model.npz")
    _check_parent("--checkpoint", path)


def save_checkpoint(path: str, model: Module, config: Mapping[str, Any], optimizer: Optimizer | None = None) -> None:
    """One plain .npz: the model's state_dict under its own names, the settings under `cli.config`,
    and the optimizer's state under `optimizer.*`. Written atomically by tinygrad_rnn.io.serialization."""
    from ..io.serialization import save

    entries: dict[str, Any] = dict(model.state_dict())
    entries[CONFIG_KEY] = encode_config({"format": CHECKPOINT_FORMAT, **config})
    if optimizer is not None:
        entries[OPTIMIZER_KEY] = optimizer.state_dict()  # a nested mapping: saved as optimizer.<name>
    try:
        save(entries, path)
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot write checkpoint {path}: {_one_line(exc)}") from None


def load_checkpoint(path: str, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(settings, model entries, optimizer entries) of a checkpoint that `save_checkpoint` wrote for `kind`."""
    from ..io.serialization import load

    try:
        entries = load(path)
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot read checkpoint {path}: {_one_line(exc)}") from None
    if CONFIG_KEY not in entries:
        raise CLIError(f"{path} was not written by tinygrad-rnn (it has no {CONFIG_KEY} entry)")
    try:
        config = json.loads(str(entries.pop(CONFIG_KEY)))
    except ValueError:
        raise CLIError(f"{path}: its {CONFIG_KEY} entry is damaged") from None
    if not isinstance(config, dict) or config.get("format") != CHECKPOINT_FORMAT:
        raise CLIError(f"{path}: unknown checkpoint format; it was not written by this version of tinygrad-rnn")
    if config.get("kind") != kind:
        raise CLIError(
            f"{path} is a checkpoint of `tinygrad-rnn {config.get('kind')}`, not of `tinygrad-rnn {kind}`; "
            "give a checkpoint written by the same command"
        )
    head = OPTIMIZER_KEY + "."
    params = {k: v for k, v in entries.items() if not k.startswith(head)}
    optimizer_state = {k[len(head) :]: v for k, v in entries.items() if k.startswith(head)}
    return config, params, optimizer_state


def load_model_state(path: str, model: Module, params: Mapping[str, np.ndarray]) -> None:
    try:
        model.load_state_dict(params)
    except ValueError as exc:
        raise CLIError(f"{path} does not fit this model: {_one_line(exc)}") from None


def restore_optimizer(path: str, optimizer: Optimizer, state: Mapping[str, np.ndarray], lr: float) -> bool:
    """Load the saved optimizer state, keeping this run's --lr; False when the checkpoint had none."""
    if not state:
        return False
    try:
        optimizer.load_state_dict(state)
    except ValueError as exc:
        raise CLIError(f"{path}: its optimizer state does not fit: {_one_line(exc)}") from None
    for group in optimizer.param_groups:
        group["lr"] = lr
    return True


def compare_settings(path: str, saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> None:
    """Resuming needs the same model: name every setting that differs."""
    diffs = [f"--{k} {saved.get(k)} (this run asks for {v})" for k, v in wanted.items() if saved.get(k) != v]
    if diffs:
        raise CLIError(f"{path} holds a different model: it was trained with " + ", ".join(diffs))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
