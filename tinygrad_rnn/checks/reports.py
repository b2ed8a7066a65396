"""reports.py — what a gradient check found, as data and as the message of a GradcheckError.

Read after jacobians.py. `JacobianComparison` holds both Jacobians of one
(output, input) pair and the entry that is furthest outside the tolerance;
`GradcheckReport` gathers them; `InvariantReport` describes a broken invariant
(grad_out = 0, or backward run twice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import fmt_shape
from .jacobians import Array, Shape


@dataclass(frozen=True)
class JacobianComparison:
    """d(output k)/d(input j) computed both ways, and how far apart they are.

    `analytic_jacobian` and `numeric_jacobian` have shape (output size, input size).
    `worst_index` indexes the input (shape `input_shape`) and `worst_output_index`
    the output at the entry that exceeds the tolerance by the most (or comes closest).
    """

    output: int
    input: int
    output_name: str
    input_name: str
    output_shape: Shape
    input_shape: Shape
    analytic_jacobian: Array
    numeric_jacobian: Array
    max_abs_error: float
    max_rel_error: float
    worst_index: Shape | None
    worst_output_index: Shape | None
    analytic: float
    numeric: float
    passed: bool

    def describe(self) -> str:
        """One line: where the worst entry is and its two values."""
        return (
            f"d({self.output_name})/d({self.input_name}) mismatch at index {_fmt_index(self.worst_index)}: "
            f"analytic={self.analytic:.6g}, numeric={self.numeric:.6g}, max |diff|={self.max_abs_error:.6g}"
        )


@dataclass(frozen=True)
class GradcheckReport:
    """Every (output, input) comparison of one check, with the tolerances used."""

    comparisons: tuple[JacobianComparison, ...]
    eps: float
    atol: float
    rtol: float

    @property
    def failures(self) -> tuple[JacobianComparison, ...]:
        return tuple(c for c in self.comparisons if not c.passed)

    def for_input(self, j: int) -> tuple[JacobianComparison, ...]:
        """The comparisons for input j (its position in `inputs`), one per output."""
        return tuple(c for c in self.comparisons if c.input == j)

    def __str__(self) -> str:
        lines = [f"{'':6}{'d(output)/d(input)':38}{'max |diff|':>12}{'max rel':>12}  worst index"]
        for c in self.comparisons:
            mark = "ok" if c.passed else "FAIL"
            pair = f"d({c.output_name})/d({c.input_name})"
            lines.append(
                f"{mark:6}{pair:38}{c.max_abs_error:12.3g}{c.max_rel_error:12.3g}  {_fmt_index(c.worst_index)}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class InvariantReport:
    """A VJP that broke one of the two invariants gradcheck also checks.

    `check` is "zero_grad_out" (grad_out = 0 gave a nonzero gradient: `gradients`
    holds that gradient) or "backward_twice" (two backward passes over one graph
    disagreed: `gradients` holds both). `max_error` is max |gradient| or
    max |first - second|, at `worst_index` into the input; `tolerance` is 0 or
    `nondet_tol`.
    """

    check: str
    output: int
    input: int
    output_name: str
    input_name: str
    input_shape: Shape
    gradients: tuple[Array, ...]
    max_error: float
    worst_index: Shape | None
    tolerance: float

    def __str__(self) -> str:
        return (
            f"{self.check}: d({self.output_name})/d({self.input_name}) max error {self.max_error:.6g} "
            f"at index {_fmt_index(self.worst_index)} (tolerance {self.tolerance:g})"
        )


def _worst(error: Array) -> tuple[float, Shape]:
    """The largest entry of an error array (NaN counts as the largest) and its index."""
    flat = np.where(np.isnan(error), np.inf, error).reshape(-1)
    i = int(np.argmax(flat))
    return float(error.reshape(-1)[i]), tuple(int(n) for n in np.unravel_index(i, error.shape))


def _fmt_index(index: Shape | None) -> str:
    return "-" if index is None else fmt_shape(index)


def _compare(
    analytic: Array,
    numeric: Array,
    atol: float,
    rtol: float,
    k: int,
    j: int,
    names: tuple[str, str],
    shapes: tuple[Shape, Shape],
) -> JacobianComparison:
    diff = np.abs(analytic - numeric)
    allowed = atol + rtol * np.abs(numeric)
    # A NaN on either side is the worst possible mismatch.
    excess = np.where(np.isnan(diff), np.inf, diff - allowed)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.abs(numeric))
    out_shape, in_shape = shapes
    if diff.size == 0:
        worst_out = worst_in = None
        a_val = n_val = float("nan")
        passed = True
    else:
        row, col = np.unravel_index(int(np.argmax(excess)), diff.shape)
        worst_out = tuple(int(i) for i in np.unravel_index(int(row), out_shape))
        worst_in = tuple(int(i) for i in np.unravel_index(int(col), in_shape))
        a_val, n_val = float(analytic[row, col]), float(numeric[row, col])
        passed = bool(np.all(excess <= 0))
    return JacobianComparison(
        output=k,
        input=j,
        output_name=names[0],
        input_name=names[1],
        output_shape=out_shape,
        input_shape=in_shape,
        analytic_jacobian=analytic,
        numeric_jacobian=numeric,
        max_abs_error=float(np.nanmax(np.where(np.isnan(diff), np.inf, diff), initial=0.0)),
        max_rel_error=float(np.nanmax(np.where(np.isnan(rel), np.inf, rel), initial=0.0)),
        worst_index=worst_in,
        worst_output_index=worst_out,
        analytic=a_val,
        numeric=n_val,
        passed=passed,
    )


def _failure_message(report: GradcheckReport) -> str:
    worst = max(report.failures, key=lambda c: c.max_abs_error if np.isfinite(c.max_abs_error) else np.inf)
    return (
        f"{worst.describe()}\n"
        f"  index {_fmt_index(worst.worst_index)} is into {worst.input_name} of shape {fmt_shape(worst.input_shape)}; "
        f"the element of {worst.output_name} (shape {fmt_shape(worst.output_shape)}) is "
        f"{_fmt_index(worst.worst_output_index)}\n"
        f"  allowed: |analytic - numeric| <= atol + rtol * |numeric| with atol={report.atol:g}, "
        f"rtol={report.rtol:g}, eps={report.eps:g}\n"
        f"{report}"
    )
