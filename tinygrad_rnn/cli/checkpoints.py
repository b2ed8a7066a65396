"""cli/checkpoints.py — how `forecast` and `chars` keep a trained model: the checkpoint file, and the
rules that stop a run from losing one.

A checkpoint is one plain .npz (see tinygrad_rnn.io.serialization): the model's state_dict under its
own names, the run's settings as JSON under `cli.config`, the optimizer's state under `optimizer.*`.

`TrainingRun` wraps a training loop so that no run loses a trained model:
- a run never replaces a checkpoint it did not write, unless it resumes that file or has --force
  (`claim_checkpoint`, called before training starts);
- it saves every --save-every steps, and when Ctrl-C is pressed: the first Ctrl-C lets the current
  step finish, then saves and exits with status 130 (a second one stops at once);
- a step whose loss is not finite, or above DIVERGENCE_FACTOR times the run's first loss (times 1 if
  that was smaller: both losses start near 1 or above, in standardised units or nats per character),
  stops the run with a message, and the file keeps the last good checkpoint;
- nothing non-finite is ever written.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import numpy as np

from ..core.errors import TinygradRNNError
from ..nn.module import Module
from ..optim import Optimizer
from .common import CLIError, check_parent, check_regular_file, one_line, say

CHECKPOINT_FORMAT = 1
CONFIG_KEY = "cli.config"  # the run's settings: JSON text in a 0-d string array (no pickle)
OPTIMIZER_KEY = "optimizer"  # the optimizer's state_dict, saved as optimizer.<its names>
# Ordinary training noise stays far below this (forecast --lr 1 peaks at 178 times its first loss and
# recovers); --lr 1e6 reaches 1.6e14 times it at step 2.
DIVERGENCE_FACTOR = 1000.0


class Interrupted(Exception):
    """Ctrl-C stopped training; the message says what was saved. The command exits with status 130."""


# ---------------------------------------------------------------- the file


def encode_config(config: Mapping[str, Any]) -> np.ndarray:
    """The settings as a 0-d string array: readable with plain `np.load(path)["cli.config"]`, no pickle."""
    return np.array(json.dumps(dict(config), sort_keys=True))


def check_checkpoint_path(path: str) -> None:
    """Fail before training, not after, when the checkpoint could not be written."""
    check_regular_file("--checkpoint", path)
    check_parent("--checkpoint", path)


def claim_checkpoint(path: str, resume_path: str | None, force: bool) -> None:
    """Refuse to replace a file this run does not continue: a trained model is never lost by accident."""
    check_checkpoint_path(path)
    target = Path(path)
    if not target.exists() or force:
        return
    if same_file(resume_path, path):
        return
    raise CLIError(
        f"--checkpoint {path} already exists and this run would replace it; continue training it with "
        f"--resume, replace it with --force, or save to another file with --checkpoint FILE"
    )


def same_file(a: str | None, b: str) -> bool:
    return a is not None and Path(a).resolve() == Path(b).resolve()


def save_checkpoint(path: str, model: Module, config: Mapping[str, Any], optimizer: Optimizer | None = None) -> None:
    """Write the checkpoint atomically (a temporary file, then a rename); refuse non-finite values."""
    from ..io.serialization import save

    state = model.state_dict()
    bad = [name for name, values in state.items() if not np.all(np.isfinite(values))]
    if bad:
        raise CLIError(f"not saving {path}: parameter {bad[0]} holds NaN or Inf")
    entries: dict[str, Any] = dict(state)
    entries[CONFIG_KEY] = encode_config({"format": CHECKPOINT_FORMAT, **config})
    if optimizer is not None:
        entries[OPTIMIZER_KEY] = optimizer.state_dict()  # a nested mapping: saved as optimizer.<name>
    try:
        save(entries, path)
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot write checkpoint {path}: {one_line(exc)}") from None


def load_checkpoint(path: str, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(settings, model entries, optimizer entries) of a checkpoint that `save_checkpoint` wrote for `kind`."""
    from ..io.serialization import load

    try:
        entries = load(path)
    except (OSError, ValueError, TinygradRNNError, NotImplementedError, MemoryError) as exc:
        raise CLIError(f"cannot read checkpoint {path}: {one_line(exc)}") from None
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
    bad = [name for name, values in params.items() if values.dtype.kind in "fc" and not np.all(np.isfinite(values))]
    if bad:
        raise CLIError(f"{path}: parameter {bad[0]} holds NaN or Inf; this checkpoint cannot be used")
    try:
        model.load_state_dict(params)
    except ValueError as exc:
        raise CLIError(f"{path} does not fit this model: {one_line(exc)}") from None


def restore_optimizer(path: str, optimizer: Optimizer, state: Mapping[str, np.ndarray], lr: float) -> bool:
    """Load the saved optimizer state, keeping this run's --lr; False when the checkpoint had none."""
    if not state:
        return False
    try:
        optimizer.load_state_dict(state)
    except ValueError as exc:
        raise CLIError(f"{path}: its optimizer state does not fit: {one_line(exc)}") from None
    for group in optimizer.param_groups:
        group["lr"] = lr
    return True


def resume_path(args: Any) -> str | None:
    """The file --resume names; a bare --resume means the --checkpoint file."""
    return None if args.resume is None else (args.checkpoint if args.resume is True else str(args.resume))


def restore_training(
    path: str,
    model: Module,
    optimizer: Optimizer,
    params: Mapping[str, np.ndarray],
    optimizer_state: Mapping[str, np.ndarray],
    lr: float,
    step: int,
) -> None:
    """Load the entries `load_checkpoint` read into the model and the optimizer (keeping this run's lr)."""
    load_model_state(path, model, params)
    restored = restore_optimizer(path, optimizer, optimizer_state, lr)
    say(f"resumed from {path} at step {step}" + ("" if restored else " (fresh optimizer state)"))


def compare_settings(path: str, saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> None:
    """Resuming needs the same model: name every setting that differs."""
    diffs = [f"--{k} {saved.get(k)} (this run asks for {v})" for k, v in wanted.items() if saved.get(k) != v]
    if diffs:
        raise CLIError(f"{path} holds a different model: it was trained with " + ", ".join(diffs))


# ---------------------------------------------------------------- the training loop's guard


class TrainingRun:
    """Checkpoints around a training loop. Use as

        with TrainingRun(path, model, optimizer, config_at, save_every=..., saved_step=..., advice=...) as run:
            for step in ...:
                ...  # one optimizer step
                run.step_done(step, loss)
            run.save(last_step)

    `config_at(step)` gives the settings to store with a checkpoint taken after `step` steps.
    """

    def __init__(
        self,
        path: str,
        model: Module,
        optimizer: Optimizer,
        config_at: Callable[[int], Mapping[str, Any]],
        *,
        save_every: int,
        saved_step: int | None,
        advice: str,
    ) -> None:
        """`saved_step`: the step whose checkpoint `path` already holds (when resuming it), else None.
        `advice`: what to try when training diverges."""
        self.path, self.model, self.optimizer, self.config_at = path, model, optimizer, config_at
        self.save_every, self.advice = save_every, advice
        self.saved_step = saved_step
        self.reference_loss: float | None = None  # the first loss of this run, or 1 if that was smaller
        self.stop_requested = False
        self._previous_handler: Any = None
        self._quiet_numpy = np.errstate(over="ignore", invalid="ignore", divide="ignore")

    # -- the loop calls these

    def step_done(self, step: int, loss: float) -> None:
        """After each optimizer step: stop on divergence, save every `save_every` steps, honour Ctrl-C."""
        if not np.isfinite(loss):
            raise self._diverged(f"the loss is {loss} at step {step}")
        if self.reference_loss is None:
            # A resumed, well-trained run may start near 0: its noise must not count as divergence.
            self.reference_loss = max(abs(loss), 1.0)
        elif abs(loss) > DIVERGENCE_FACTOR * self.reference_loss:
            raise self._diverged(f"the loss is {loss:.4g} at step {step}, over {DIVERGENCE_FACTOR:g} times its start")
        if self.stop_requested:
            self.save(step)
            raise Interrupted(f"interrupted after step {step}; checkpoint saved to {self.path}; continue with --resume")
        if self.save_every and step % self.save_every == 0:
            self.save(step)

    def save(self, step: int) -> None:
        """Write the checkpoint for `step` unless it is already on disk; parameters must be finite."""
        if self.saved_step == step:
            return
        if not all(np.all(np.isfinite(p.data)) for p in self.model.parameters()):
            raise self._diverged(f"the parameters hold NaN or Inf after step {step}")
        save_checkpoint(self.path, self.model, self.config_at(step), self.optimizer)
        self.saved_step = step

    # -- Ctrl-C

    def __enter__(self) -> TrainingRun:
        if threading.current_thread() is threading.main_thread():  # signal handlers live on the main thread
            self._previous_handler = signal.signal(signal.SIGINT, self._on_ctrl_c)
        # A diverging run overflows: step_done reports that in words, so numpy's warnings would only add noise.
        self._quiet_numpy.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._quiet_numpy.__exit__(kind, error, trace)
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            # In the middle of a step the parameters may be half updated: keep the file as it is.
            raise Interrupted(f"interrupted in the middle of a step; {self._kept()}") from None
        if kind is None and self.stop_requested:  # Ctrl-C after the last step: its checkpoint is saved
            raise Interrupted(f"interrupted after the last step; {self._kept()}")

    def _on_ctrl_c(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True
        say("Ctrl-C: stopping after this step and saving a checkpoint (press Ctrl-C again to stop at once)")

    def _diverged(self, what: str) -> CLIError:
        return CLIError(f"training diverged: {what}; {self._kept()}; {self.advice}")

    def _kept(self) -> str:
        if self.saved_step is None:
            return f"this run saved nothing to {self.path}"
        return f"{self.path} keeps the checkpoint of step {self.saved_step}"
