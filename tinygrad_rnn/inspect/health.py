"""health.py — a verdict on a set of gradients: NaN, Inf, zero, vanishing, exploding. Read after gradflow.py.

`check_gradients` turns a `GradFlowReport` (or any parameters' `.grad`) into a
list of problems and names the first VJP where each kind of problem appeared,
from `inspect.backward_trace`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import ArgumentError
from ..core.tensor import Tensor
from ..nn.module import Module
from .gradflow import GradFlowReport, _grad_data
from .watch import VJPRecord


@dataclass
class Problem:
    """One unhealthy gradient: where (a parameter or a time step), what, how big, and where it began."""

    where: str
    kind: str  # "nan" | "inf" | "zero" | "vanishing" | "exploding" | "missing"
    norm: float
    origin: str | None = None

    def __str__(self) -> str:
        text = f"{self.where}: {self.kind} (norm {self.norm:.3g})"
        return text + (f"; {self.origin}" if self.origin else "")


@dataclass
class HealthReport:
    """The problems `check_gradients` found; empty means healthy. Prints one line per problem."""

    problems: list[Problem]
    checked: int
    vanish_tol: float
    explode_tol: float

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}

    def __str__(self) -> str:
        if self.ok:
            return (
                f"all {self.checked} gradients healthy "
                f"({self.vanish_tol:g} <= norm <= {self.explode_tol:g}, finite, not zero)"
            )
        head = f"{len(self.problems)} problem(s) in {self.checked} gradients:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


def check_gradients(
    params: Module | Mapping[str, Tensor | np.ndarray] | Iterable[Tensor],
    report: GradFlowReport | None = None,
    *,
    trace: Sequence[VJPRecord] | None = None,
    vanish_tol: float = 1e-8,
    explode_tol: float = 1e3,
) -> HealthReport:
    """Flag NaN, Inf, exactly-zero, vanishing (norm < vanish_tol) and exploding (norm > explode_tol) gradients.

    Checks each parameter's `.grad` (`params` is a Module, tensors, or a dict of
    tensors or of gradient arrays such as `report.grads`) and, given a
    `report`, each ||dL/dh_t||. A parameter without `.grad` is "missing"
    (unused, or backward not run).
    With a backward trace (`inspect.backward_trace()`, or the report's own)
    each problem names its origin: the first VJP, in the order backward ran
    them, whose outgoing gradient had the problem although its incoming one
    did not — the op (and its module/step tags) where the gradient went bad.
    """
    if not 0 <= vanish_tol < explode_tol:
        raise ArgumentError(
            "check_gradients: need 0 <= vanish_tol < explode_tol, "
            f"got vanish_tol={vanish_tol}, explode_tol={explode_tol}"
        )
    records = list(trace) if trace is not None else list(report.trace) if report is not None else []
    problems: list[Problem] = []
    items = _named_grads(params)
    for name, g in items:
        if g is None:
            problems.append(Problem(f"param {name}", "missing", math.nan, "no .grad: unused, or backward() not run"))
            continue
        problems.extend(_judge(f"param {name}", g, vanish_tol, explode_tol, records))
    steps = 0
    if report is not None:
        steps = report.T
        for i, n in enumerate(report.grad_norms):
            problems.extend(_judge(f"dL/dh_{i + 1}", np.array([n]), vanish_tol, explode_tol, records))
    return HealthReport(problems, len(items) + steps, vanish_tol, explode_tol)


def _named_grads(
    params: Module | Mapping[str, Tensor | np.ndarray] | Iterable[Tensor],
) -> list[tuple[str, np.ndarray | None]]:
    """(name, gradient array or None) for a Module, a dict of tensors or of gradients, or a list of tensors."""
    if isinstance(params, Module):
        items: list[tuple[str, Any]] = list(params.named_parameters())
    elif isinstance(params, Mapping):
        items = list(params.items())
    else:
        items = [(str(i), p) for i, p in enumerate(params)]
    out: list[tuple[str, np.ndarray | None]] = []
    for name, p in items:
        if isinstance(p, np.ndarray):
            out.append((name, p))  # already a gradient (e.g. GradFlowReport.grads)
        elif isinstance(p, Tensor):
            out.append((name, None if p.grad is None else _grad_data(p)))
        else:
            raise ArgumentError(
                f"check_gradients: parameter {name} is a {type(p).__name__}, not a Tensor or a gradient array"
            )
    return out


def _judge(where: str, g: np.ndarray, vanish_tol: float, explode_tol: float, records: list[VJPRecord]) -> list[Problem]:
    with np.errstate(over="ignore", invalid="ignore"):
        norm = float(np.linalg.norm(g.ravel().astype(np.float64)))
    found = []
    if np.isnan(g).any():
        found.append(Problem(where, "nan", norm, _origin(records, "nan", vanish_tol, explode_tol)))
    if np.isinf(g).any():
        found.append(Problem(where, "inf", norm, _origin(records, "inf", vanish_tol, explode_tol)))
    if found:
        return found
    if norm == 0.0:
        return [Problem(where, "zero", norm, _origin(records, "zero", vanish_tol, explode_tol))]
    if norm < vanish_tol:
        return [Problem(where, "vanishing", norm, _origin(records, "vanishing", vanish_tol, explode_tol))]
    if norm > explode_tol:
        return [Problem(where, "exploding", norm, _origin(records, "exploding", vanish_tol, explode_tol))]
    return []


def _is(kind: str, norm: float, vanish_tol: float, explode_tol: float) -> bool:
    """Does a gradient of this 2-norm have the problem? (The norm of an array with a NaN is NaN, with an Inf is Inf.)"""
    if kind == "nan":
        return math.isnan(norm)
    if kind == "inf":
        return math.isinf(norm)
    if kind == "zero":
        return norm == 0.0
    if kind == "vanishing":
        return 0.0 < norm < vanish_tol
    return math.isfinite(norm) and norm > explode_tol


def _origin(records: list[VJPRecord], kind: str, vanish_tol: float, explode_tol: float) -> str | None:
    """Name the first VJP whose outgoing gradient had the problem while its incoming gradient did not."""
    if not records:
        return None
    if kind in ("nan", "inf"):
        # A NaN usually starts as an Inf (inf * 0, inf - inf): name where the first non-finite value appeared.
        def bad(n: float) -> bool:
            return not math.isfinite(n)

        what = "non-finite"
    else:

        def bad(n: float) -> bool:
            return _is(kind, n, vanish_tol, explode_tol)

        what = kind
    for r in records:
        if bad(r.grad_out.norm):
            if r is records[0]:
                return f"the gradient fed to backward() at {r.op} was already {what}"
            continue
        for i, g in enumerate(r.grads_in):
            if g is not None and bad(g.norm):
                tags = ", ".join(f"{k} {v}" for k, v in r.tags.items())
                where = f" [{tags}]" if tags else ""
                return f"first {what} gradient came out of the VJP of {r.op}{where} (to its input {i})"
    return None
