"""optimizer.py — the Optimizer base class: parameter groups, per-parameter state, state_dict.
Read after nn/module.py; the update rules themselves are in algorithms.py.

Each optimizer reads `p.grad` (left by `backward()`), updates its own state
arrays, and *rebinds* `p.data` to a new array. It never writes into the old
parameter array: a graph recorded before the step still holds that array and
must keep seeing the values it was recorded with (see engine.Function.saved_tensors).

Parameter groups work as in PyTorch: pass a list of dicts, each with "params"
and any hyper-parameters that differ from the defaults. A learning-rate
scheduler (lr_scheduler.py) changes `group["lr"]` in place and records the
starting value as `group["initial_lr"]`, as PyTorch's do. The state dict is flat
and made only of arrays, so `tg.save` can write it without pickle::

    optimizer          0-d str array, the class name ("Adam")
    param_groups.0.params   int array: indices of the group's parameters
    param_groups.0.lr       0-d array (a tuple such as betas is a 1-d array)
    param_groups.0.initial_lr   only once a scheduler has recorded it
    state.3.exp_avg         the state array of parameter 3
    state.3.step            0-d int array
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..core.engine import enable_grad
from ..core.errors import ArgumentError, CheckpointError, DTypeError, GradientError, ShapeError, fmt_shape
from ..core.tensor import Tensor

ParamsArg = Iterable[Tensor] | Iterable[Mapping[str, Any]]


class Optimizer:
    """Base class: holds parameter groups and per-parameter state; subclasses define `_update`."""

    def __init__(self, params: ParamsArg, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}  # Tensors hash by identity
        if hasattr(params, "named_parameters"):  # a Module, a common slip
            raise ArgumentError(
                f"{type(self).__name__}: pass model.parameters(), not the {type(params).__name__} itself"
            )
        items: list[Any] = [params] if isinstance(params, Tensor) else list(params)
        if not items:
            raise ArgumentError(f"{type(self).__name__}: got an empty parameter list")
        if all(isinstance(item, Mapping) for item in items):
            for item in items:
                self.add_param_group(dict(item))
        else:
            self.add_param_group({"params": items})

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group: {"params": [...], optional hyper-parameters}; missing ones take the defaults."""
        name = type(self).__name__
        if "params" not in group:
            raise ArgumentError(f"{name}: a parameter group needs a 'params' entry, got keys {sorted(group)}")
        unknown = sorted(set(group) - set(self.defaults) - {"params"})
        if unknown:
            raise ArgumentError(
                f"{name}: unknown hyper-parameter(s) {unknown} in a parameter group; known: {sorted(self.defaults)}"
            )
        raw = group["params"]
        params = [raw] if isinstance(raw, Tensor) else list(raw)
        if not params:
            raise ArgumentError(f"{name}: a parameter group has an empty 'params' list")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            where = f"parameter {i} of group {len(self.param_groups)}"
            if not isinstance(p, Tensor):
                raise DTypeError(f"{name}: {where} is a {type(p).__name__}, not a Tensor")
            if not p.is_leaf:
                raise GradientError(f"{name}: {where} is not a leaf (it was computed); optimize the leaf it came from")
            if p.dtype.kind != "f":
                raise DTypeError(f"{name}: {where} has dtype {p.dtype}; only floating-point tensors can be optimized")
            if id(p) in seen:
                raise ArgumentError(f"{name}: {where} appears more than once among the parameter groups")
            seen.add(id(p))
        full = {**self.defaults, **group, "params": params}
        self._validate(full)
        self.param_groups.append(full)

    def _validate(self, group: dict[str, Any]) -> None:
        """Raise ArgumentError for hyper-parameters outside their range (subclasses extend)."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every gradient: `.grad = None`, or a new zero array if `set_to_none=False`."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None if set_to_none else np.zeros_like(p.data)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient. `closure` (re-evaluates the loss) is optional."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        # Check every gradient before changing anything, so a bad one leaves all parameters as they were.
        work = [
            (group, p, _grad_array(f"{type(self).__name__}.step: parameter {i} of group {g}", p))
            for g, group in enumerate(self.param_groups)
            for i, p in enumerate(group["params"])
            if p.grad is not None
        ]
        for group, p, grad in work:
            if group["maximize"]:
                grad = -grad
            state = self.state.setdefault(p, {})
            new = self._update(p.data, grad, state, group)
            p.data = np.asarray(new, dtype=p.dtype)  # rebind, never write into the old array
        return loss

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} defines no _update()")

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume, as a flat dict of arrays (layout in the module docstring)."""
        out: dict[str, np.ndarray] = {"optimizer": np.array(type(self).__name__)}
        index = {id(p): i for i, p in enumerate(self._all_params())}
        for g, group in enumerate(self.param_groups):
            out[f"param_groups.{g}.params"] = np.array([index[id(p)] for p in group["params"]], dtype=np.int64)
            for key, value in group.items():
                if key != "params":
                    out[f"param_groups.{g}.{key}"] = np.array(value)
        for p, state in self.state.items():
            for key, value in state.items():
                out[f"state.{index[id(p)]}.{key}"] = np.array(value, copy=True)
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyper-parameters and state. Every entry is checked before any is used, so a state
        dict that does not fit leaves the optimizer unchanged; CheckpointError names each problem.

        Takes the flat dict `state_dict()` returns, or the same entries nested
        ({"state": {0: {...}}, "param_groups": [{...}]}, PyTorch's shape)."""
        name = type(self).__name__
        entries = _flat_entries(state_dict)
        problems: list[str] = []
        saved_type = entries.pop("optimizer", None)
        if saved_type is None:
            problems.append("missing entry 'optimizer'")
        elif str(saved_type) != name:
            problems.append(f"it was saved by {saved_type}, not {name}")
        params = self._all_params()
        positions = {id(p): i for i, p in enumerate(params)}  # by identity: Tensor == is elementwise
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        new_state: dict[int, dict[str, Any]] = {}
        for key, value in entries.items():
            parts = key.split(".")
            if len(parts) == 3 and parts[0] == "param_groups" and parts[1].isdigit():
                problems += _load_group_entry(key, int(parts[1]), parts[2], value, self.param_groups, groups, positions)
            elif len(parts) == 3 and parts[0] == "state" and parts[1].isdigit() and int(parts[1]) < len(params):
                param = params[int(parts[1])]
                if parts[2] not in self._state_names:
                    problems.append(f"unexpected entry {key} ({name} keeps {sorted(self._state_names)})")
                elif parts[2] == "step":
                    if value.shape != () or value.dtype.kind not in "iu":
                        problems.append(
                            f"{key} must be a 0-d integer array, got {value.dtype} {fmt_shape(value.shape)}"
                        )
                    else:
                        new_state.setdefault(int(parts[1]), {})["step"] = int(value)
                elif value.shape != param.shape or value.dtype.kind != "f":
                    problems.append(
                        f"{key} has {value.dtype} shape {fmt_shape(value.shape)}, "
                        f"expected floating point {fmt_shape(param.shape)}"
                    )
                else:
                    new_state.setdefault(int(parts[1]), {})[parts[2]] = np.array(value, dtype=param.dtype)
            else:
                problems.append(f"unexpected entry {key}")
        for g in range(len(self.param_groups)):
            if f"param_groups.{g}.params" not in entries:
                problems.append(f"missing entry param_groups.{g}.params")
            missing = sorted(
                k
                for k in self.param_groups[g]
                if k not in ("params", "initial_lr") and f"param_groups.{g}.{k}" not in entries
            )
            problems += [f"missing entry param_groups.{g}.{k}" for k in missing]
        if not problems:
            for g, group in enumerate(groups):
                try:
                    self._validate({**group, "params": self.param_groups[g]["params"]})
                except ArgumentError as exc:
                    problems.append(f"param_groups.{g}: {exc}")
        if problems:
            raise CheckpointError(f"{name}.load_state_dict: " + "; ".join(problems))
        for g, group in enumerate(groups):
            self.param_groups[g].update(group)
        self.state = {params[i]: state for i, state in new_state.items()}

    _state_names: frozenset[str] = frozenset()

    def _all_params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for g, group in enumerate(self.param_groups):
            settings = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {g}: {len(group['params'])} parameter(s), {settings}")
        return "\n".join([*lines, ")"])


def _flat_entries(state: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """Nested mappings (and lists of mappings) -> dotted keys; every leaf value as an array."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, list | tuple) and value and all(isinstance(v, Mapping) for v in value):
            value = dict(enumerate(value))
        if isinstance(value, Mapping):
            out.update(_flat_entries(value, name + "."))
        else:
            out[name] = np.asarray(value.data if isinstance(value, Tensor) else value)
    return out


def _load_group_entry(
    key: str,
    g: int,
    field: str,
    value: np.ndarray,
    current: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    positions: dict[int, int],
) -> list[str]:
    """Check one `param_groups.g.field` entry and, if it fits, put the Python value into `groups[g]`."""
    if g >= len(current):
        return [f"{key}: the optimizer has {len(current)} parameter group(s)"]
    if field == "params":
        expected = [positions[id(p)] for p in current[g]["params"]]
        if value.ndim != 1 or value.tolist() != expected:
            return [f"{key} is {value.tolist()}, but this optimizer's group {g} holds parameters {expected}"]
        return []
    if field == "initial_lr":  # a scheduler's record; loading it before the scheduler exists is fine
        if value.shape != () or value.dtype.kind not in "iuf":
            return [f"{key} must be a 0-d number, got {value.dtype} {fmt_shape(value.shape)}"]
        groups[g][field] = float(value)
        return []
    if field not in current[g]:
        return [f"unexpected entry {key}"]
    template = current[g][field]
    try:
        groups[g][field] = _like(template, value)
    except (TypeError, ValueError):
        return [f"{key} is {value.tolist()!r}, which does not fit the current value {template!r}"]
    return []


def _like(template: Any, value: np.ndarray) -> Any:
    """`value` (an array from a state dict) as the Python type of `template`; raise if it cannot be."""
    if isinstance(template, bool):
        if value.shape != () or value.dtype.kind != "b":
            raise TypeError
        return bool(value)
    if isinstance(template, tuple):
        if value.shape != (len(template),) or value.dtype.kind not in "iuf":
            raise ValueError
        return tuple(float(v) for v in value)
    if value.shape != () or value.dtype.kind not in "iuf":
        raise TypeError
    return int(value) if isinstance(template, int) else float(value)


def _grad_array(op: str, p: Tensor) -> np.ndarray:
    g = p.grad
    array = np.asarray(g.data if isinstance(g, Tensor) else g)
    if array.shape != p.shape:
        raise ShapeError(f"{op} has shape {fmt_shape(p.shape)} but its grad has shape {fmt_shape(array.shape)}")
    return array


def _require(op: str, ok: bool, message: str) -> None:
    if not ok:
        raise ArgumentError(f"{op}: {message}")


def _check_number(op: str, group: dict[str, Any], key: str, low: float = 0.0, below: float = math.inf) -> None:
    """group[key] must be a real number in [low, below)."""
    value = group[key]
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise DTypeError(f"{op}: {key} must be a number, got {type(value).__name__}")
    _require(op, bool(low <= value < below), f"invalid {key} {value}: must be in [{low}, {below})")
