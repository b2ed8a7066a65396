"""lr_scheduler.py — learning-rate schedules, as in torch.optim.lr_scheduler. Read after optimizer.py.

A scheduler changes `group["lr"]` of its optimizer's parameter groups in place;
the optimizer reads that value on its next `step()`. Call `scheduler.step()`
once per epoch (or per batch), after `optimizer.step()`, as in PyTorch::

    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    sched = tg.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(100):
        train(...)            # calls opt.step()
        sched.step()

The rules are PyTorch's, including its recursive ("chainable") form: `step()`
computes the new rate from the group's current one (lr <- lr * gamma), so that
a change made to `group["lr"]` from outside carries on. From an untouched start
each schedule equals its closed form, written in the class docstring with
base_lr = the group's `initial_lr` and t = `last_epoch` (0 at construction).
`step(epoch)` (deprecated in PyTorch) jumps to epoch `epoch` with the closed form.

Construction records `group["initial_lr"]` (when `last_epoch=-1`) and takes
step 0, as PyTorch does. `state_dict()` is a flat dict of arrays, so `tg.save`
stores it without pickle. Functions are not data: LambdaLR's `lr_lambda` is not
saved (PyTorch saves the attributes of callable objects, which would need
pickle here). Build the scheduler with the same function, then load the state.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ArgumentError, DTypeError, fmt_shape
from ..core.tensor import Tensor
from .optimizer import Optimizer
from .scheduler_base import (
    _FLOAT,
    _INT,
    _INTS,
    _PER_GROUP,
    _STR,
    LRScheduler,
    _check_int,
    _check_real,
    _per_group,
    _require_optimizer,
)

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "MultiStepLR",
    "ReduceLROnPlateau",
    "StepLR",
]


# ================================================================ the schedules


class StepLR(LRScheduler):
    """Multiply the rate by gamma every step_size epochs: lr_t = base_lr * gamma ** (t // step_size)."""

    _fields: ClassVar[dict[str, str]] = {**LRScheduler._fields, "step_size": _INT, "gamma": _FLOAT}

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        _check_int("StepLR", "step_size", step_size, low=1)
        _check_real("StepLR", "gamma", gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by gamma at each milestone: lr_t = base_lr * gamma ** #{milestones <= t}.

    A milestone listed twice multiplies by gamma twice, as in PyTorch."""

    _fields: ClassVar[dict[str, str]] = {**LRScheduler._fields, "milestones": _INTS, "gamma": _FLOAT}

    def __init__(
        self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.milestones = sorted(milestones)
        for m in self.milestones:
            _check_int("MultiStepLR", "each milestone", m, low=0)
        _check_real("MultiStepLR", "gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        hits = self.milestones.count(self.last_epoch)
        return [lr * self.gamma**hits for lr in lrs] if hits else lrs

    def _closed_form_lr(self) -> list[float]:
        passed = sum(m <= self.last_epoch for m in self.milestones)
        return [base * self.gamma**passed for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the rate by gamma every epoch: lr_t = base_lr * gamma ** t."""

    _fields: ClassVar[dict[str, str]] = {**LRScheduler._fields, "gamma": _FLOAT}

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        _check_real("ExponentialLR", "gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        # Resuming with last_epoch=k must not decay once more in the constructor's step.
        return lrs if self._is_initial else [lr * self.gamma for lr in lrs]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Anneal from base_lr to eta_min along half a cosine over T_max epochs:

        lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    Past T_max the recursive rule keeps going (back up to base_lr at 2 T_max, and so on),
    as PyTorch's does; for restarts at each T_max PyTorch has CosineAnnealingWarmRestarts.
    """

    _fields: ClassVar[dict[str, str]] = {**LRScheduler._fields, "T_max": _INT, "eta_min": _FLOAT}

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        _check_int("CosineAnnealingLR", "T_max", T_max, low=1)
        _check_real("CosineAnnealingLR", "eta_min", eta_min)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, period, low = self.last_epoch, self.T_max, self.eta_min
        groups = self.optimizer.param_groups
        if self._is_initial:  # also when resuming with last_epoch=k: keep the group's current rate
            return [group["lr"] for group in groups]
        if (t - 1 - period) % (2 * period) == 0:
            # Leaving the minimum the ratio below is 0/0; add the step up from the cosine's bottom instead.
            return [
                group["lr"] + (base - low) * (1 - math.cos(math.pi / period)) / 2
                for base, group in zip(self.base_lrs, groups, strict=True)
            ]
        ratio = (1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
        return [ratio * (group["lr"] - low) + low for group in groups]

    def _closed_form_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr_t = base_lr * lr_lambda(t), with one function for all groups or a list of one per group.

    state_dict() does not contain the functions (see the module docstring)."""

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        _require_optimizer("LambdaLR", optimizer)
        groups = len(optimizer.param_groups)
        self.lr_lambdas: list[Callable[[int], float]] = _per_group("LambdaLR", "lr_lambda", lr_lambda, groups)
        for i, fn in enumerate(self.lr_lambdas):
            if not callable(fn):
                raise DTypeError(f"LambdaLR: lr_lambda {i} must be a function of the epoch, got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs, strict=True)]

    def _closed_form_lr(self) -> list[float]:
        return self.get_lr()


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rate by `factor` once a metric has not improved for more than `patience` epochs.

    Improvement (mode "min"; "max" mirrors it) means, for threshold_mode
        "rel":  metric < best * (1 - threshold)        "abs":  metric < best - threshold
    Each epoch without improvement counts one bad epoch; when the count exceeds
    `patience`, every group's rate becomes max(lr * factor, min_lr) (unchanged if that
    changes it by eps or less), the count restarts, and the next `cooldown` epochs
    count no bad epochs. `step(metric)` takes the metric; this scheduler, as in
    PyTorch, does not record `initial_lr`.
    """

    _fields: ClassVar[dict[str, str]] = {
        "factor": _FLOAT,
        "min_lrs": _PER_GROUP,
        "default_min_lr": _FLOAT,
        "patience": _INT,
        "cooldown": _INT,
        "cooldown_counter": _INT,
        "mode": _STR,
        "threshold": _FLOAT,
        "threshold_mode": _STR,
        "best": _FLOAT,
        "num_bad_epochs": _INT,
        "eps": _FLOAT,
        "last_epoch": _INT,
        "_last_lr": _PER_GROUP,
    }
    _optional = frozenset({"default_min_lr"})

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        name = "ReduceLROnPlateau"
        _require_optimizer(name, optimizer)
        _check_real(name, "factor", factor)
        if not factor < 1.0:
            raise ArgumentError(f"{name}: invalid factor {factor}: must be < 1 (it multiplies the rate)")
        for key, number in (("threshold", threshold), ("eps", eps)):
            _check_real(name, key, number)
        _check_int(name, "patience", patience, low=0)
        _check_int(name, "cooldown", cooldown, low=0)
        self.optimizer = optimizer
        self.min_lrs: list[float] = _per_group(name, "min_lr", min_lr, len(optimizer.param_groups))
        for value in self.min_lrs:
            _check_real(name, "min_lr", value)
        # Used if groups are added later; PyTorch keeps it only when min_lr was one number.
        self.default_min_lr: float | None = None if isinstance(min_lr, list | tuple) else self.min_lrs[0]
        self.factor = factor
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        problems = self._check_loaded({"mode": mode, "threshold_mode": threshold_mode})
        if problems:
            raise ArgumentError(f"{name}: " + "; ".join(problems))
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.best = math.inf if mode == "min" else -math.inf  # the worst value: the first metric improves on it
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]  # PyTorch's signature
        """Record this epoch's metric (a number or a 0-d Tensor) and reduce the rate if it has plateaued."""
        value = metrics.data if isinstance(metrics, Tensor) else metrics
        try:
            current = float(value)
        except (TypeError, ValueError):
            shape = fmt_shape(np.shape(value))
            raise ArgumentError(
                f"ReduceLROnPlateau.step: metrics must be one number, got {type(metrics).__name__} of shape {shape}"
            ) from None
        if epoch is not None:
            warnings.warn("ReduceLROnPlateau.step(metrics, epoch): epoch is deprecated", UserWarning, stacklevel=2)
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, a: float, best: float) -> bool:
        """Whether metric `a` improves on `best` by more than the threshold."""
        if self.threshold_mode == "rel":
            return a < best * (1 - self.threshold) if self.mode == "min" else a > best * (1 + self.threshold)
        return a < best - self.threshold if self.mode == "min" else a > best + self.threshold

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(self.min_lrs) != len(groups):
            if self.default_min_lr is None:
                raise ArgumentError(
                    f"ReduceLROnPlateau: the optimizer now has {len(groups)} parameter groups, but min_lr was "
                    f"given for {len(self.min_lrs)}; set scheduler.min_lrs to one value per group"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs, strict=True):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new

    def _check_loaded(self, decoded: dict[str, Any]) -> list[str]:
        problems = []
        if decoded["mode"] not in ("min", "max"):
            problems.append(f"mode must be 'min' or 'max', got {decoded['mode']!r}")
        if decoded["threshold_mode"] not in ("rel", "abs"):
            problems.append(f"threshold_mode must be 'rel' or 'abs', got {decoded['threshold_mode']!r}")
        return problems
