"""scheduler_base.py — LRScheduler, the base of every schedule in lr_scheduler.py, and its state dict.

A schedule is a rule for `group["lr"]`; this file holds what they share: the
`initial_lr` record, the epoch count, `step()`, and a state dict made only of
arrays, checked entry by entry on load. Read lr_scheduler.py first.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ArgumentError, CheckpointError, DTypeError, fmt_shape
from ..core.tensor import Tensor
from .optimizer import Optimizer

# How each saved field is stored; see LRScheduler._decode.
_INT, _FLOAT, _STR, _PER_GROUP, _INTS = "int", "float", "str", "per_group", "ints"


class LRScheduler:
    """Base class: records `initial_lr`, counts epochs in `last_epoch`, writes `group["lr"]` in `step()`.

    A subclass defines `get_lr()` (the recursive rule `step()` uses) and
    `_closed_form_lr()` (lr as a function of `last_epoch`, for `step(epoch)`).
    """

    # name -> storage kind of every attribute that state_dict() saves
    _fields: ClassVar[dict[str, str]] = {
        "base_lrs": _PER_GROUP,
        "last_epoch": _INT,
        "_step_count": _INT,
        "_last_lr": _PER_GROUP,
    }

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        name = type(self).__name__
        _require_optimizer(name, optimizer)
        _check_int(name, "last_epoch", last_epoch, low=-1)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ArgumentError(
                        f"{name}: last_epoch={last_epoch} resumes a schedule, but param_groups[{i}] has no "
                        "'initial_lr'; load the optimizer's state_dict first, or start with last_epoch=-1"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._last_lr: list[float] = []
        # The constructor's step sets the starting rates; some rules treat it specially.
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        raise NotImplementedError(f"{type(self).__name__} defines no get_lr()")

    def _closed_form_lr(self) -> list[float]:
        raise NotImplementedError(f"{type(self).__name__} defines no _closed_form_lr()")

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and write the new rates into the optimizer's groups.

        `step(epoch)` sets `last_epoch = epoch` and uses the closed form; PyTorch
        deprecates it, and so do we (a warning), but it gives the same numbers."""
        name = type(self).__name__
        groups = len(self.optimizer.param_groups)
        if groups != len(self.base_lrs):  # PyTorch would leave the extra groups unscheduled, silently
            raise ArgumentError(
                f"{name}.step: the optimizer has {groups} parameter groups, but the scheduler was built for "
                f"{len(self.base_lrs)}; add every group before building the scheduler"
            )
        if epoch is not None:
            _check_int(name, "epoch", epoch, low=0)
            warnings.warn(
                f"{name}.step(epoch) is deprecated, as in PyTorch; call step() once per epoch",
                UserWarning,
                stacklevel=2,
            )
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = self._closed_form_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The rate of each parameter group, as the last `step()` left it."""
        return list(self._last_lr)

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict[str, np.ndarray]:
        """The scheduler's state as a flat dict of arrays (the optimizer's state is saved separately)."""
        return {key: np.array(getattr(self, key)) for key in self._fields if getattr(self, key) is not None}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the state `state_dict()` returned. Every entry is checked first: a state dict that does
        not fit leaves the scheduler unchanged and raises CheckpointError naming each problem."""
        name = type(self).__name__
        groups = len(self.optimizer.param_groups)
        problems = [f"unexpected entry {key!r}" for key in state_dict if key not in self._fields]
        decoded: dict[str, Any] = {}
        for key, kind in self._fields.items():
            if key not in state_dict:
                if key not in self._optional:
                    problems.append(f"missing entry {key!r}")
                continue
            value = state_dict[key]
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            try:
                decoded[key] = _decode(kind, array, groups)
            except ValueError as exc:
                problems.append(f"entry {key!r} {exc}")
        if not problems:
            problems = self._check_loaded(decoded)
        if problems:
            raise CheckpointError(f"{name}.load_state_dict: " + "; ".join(problems))
        for key in self._optional:
            setattr(self, key, None)
        for key, value in decoded.items():
            setattr(self, key, value)

    _optional: frozenset[str] = frozenset()  # fields that may be absent (saved only when not None)

    def _check_loaded(self, decoded: dict[str, Any]) -> list[str]:
        """Problems with loaded values beyond their type and shape (subclasses extend)."""
        return []


def _decode(kind: str, array: np.ndarray, groups: int) -> Any:
    """An array from a state dict as the Python value of storage `kind`; ValueError says what is wrong."""
    what = f"{array.dtype} {fmt_shape(array.shape)}"
    if kind == _INT:
        if array.shape != () or array.dtype.kind not in "iu":
            raise ValueError(f"must be a 0-d integer array, got {what}")
        return int(array)
    if kind == _FLOAT:
        if array.shape != () or array.dtype.kind not in "iuf":
            raise ValueError(f"must be a 0-d number, got {what}")
        return float(array)
    if kind == _STR:
        if array.shape != () or array.dtype.kind != "U":
            raise ValueError(f"must be a 0-d string array, got {what}")
        return str(array)
    if kind == _PER_GROUP:
        if array.shape != (groups,) or array.dtype.kind not in "iuf":
            raise ValueError(f"must hold one number per parameter group, shape ({groups},), got {what}")
        return [float(v) for v in array]
    integers = array.dtype.kind in "iu" or array.size == 0  # _INTS; np.array([]) is float64
    if array.ndim != 1 or not integers:
        raise ValueError(f"must be a 1-d integer array, got {what}")
    return [int(v) for v in array]


def _require_optimizer(op: str, optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise DTypeError(f"{op}: expected an Optimizer, got {type(optimizer).__name__}")


def _check_int(op: str, key: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DTypeError(f"{op}: {key} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ArgumentError(f"{op}: invalid {key} {value}: must be at least {low}")


def _check_real(op: str, key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise DTypeError(f"{op}: {key} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ArgumentError(f"{op}: invalid {key} {value}: must be finite")


def _per_group(op: str, key: str, value: Any, groups: int) -> list[Any]:
    """One value for every group: a list of `groups` values, or one value repeated."""
    if isinstance(value, list | tuple):
        if len(value) != groups:
            raise ArgumentError(f"{op}: expected {groups} {key} (one per parameter group), got {len(value)}")
        return list(value)
    return [value] * groups
