"""gradflow_report.py — what `gradient_flow` measured, and `decay_rate`, the slope of a norm curve.

Read after gradflow.py (which re-exports both names). `GradFlowReport` holds
the per-step norms ||dL/dh_t|| and ||dh_T/dh_t||, each shared weight's
per-step gradient terms, and W_hh's spectral radius; `str(report)` is the
table the `tinygrad-rnn gradflow` command prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import ArgumentError
from .watch import BackwardTrace


@dataclass
class GradFlowReport:
    """What `gradient_flow` measured. Time index i holds step t = i + 1 (the `step` tag i).

    grad_norms[i]      ||dL/dh_t||, Frobenius over the batch (B, H)
    jacobian_norms[i]  ||dh_T/dh_t||_2, the spectral norm, for batch element `sample` (1 at t = T)
    jacobian_fro[i]    ||dh_T/dh_t||_F, the same products' Frobenius norm
    step_terms[name]   (T, *shape): term i of dL/d(name), from the uses recorded at step i
    other_terms[name]  the part of dL/d(name) from uses outside any step (zeros if none)
    grads[name]        the parameter's `.grad` after backward (and after clipping)
    """

    loss: float
    grad_norms: np.ndarray
    jacobian_norms: np.ndarray | None
    jacobian_fro: np.ndarray | None
    step_terms: dict[str, np.ndarray]
    other_terms: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    spectral_radius: float | None  # rho(W_hh) of the first layer, when W_hh is square (RNN, LinearRNN)
    sigma_max: float | None  # largest singular value of the same W_hh (any shape)
    total_norm: float  # ||all of the layer's gradients||_2 before clipping
    clip_coef: float = 1.0  # what clipping multiplied every gradient by (1.0: no clipping)
    trace: BackwardTrace = field(default_factory=BackwardTrace, repr=False)

    @property
    def T(self) -> int:
        return len(self.grad_norms)

    def clipped_grad_norms(self) -> np.ndarray:
        """clip_coef * ||dL/dh_t||: the profile of what the clipped update is made of."""
        return self.clip_coef * self.grad_norms

    def term_norms(self, name: str) -> np.ndarray:
        """||term_t|| of dL/d(name) for every step: how much each step contributes."""
        terms = self._terms(name)
        return np.sqrt((terms.reshape(len(terms), -1) ** 2).sum(axis=1))

    def term_sum_error(self, name: str) -> float:
        """max |sum_t term_t + other - .grad|: 0 up to rounding when the split is complete."""
        total = self._terms(name).sum(axis=0) + self.other_terms[name]
        return float(np.max(np.abs(total - self.grads[name]))) if total.size else 0.0

    def rate(self, which: str = "grad", first: int = 1, last: int | None = None) -> float:
        """The factor the norm changes by per step back in time, fitted over t = first..last (1-based).

        A least-squares line through log ||.|| against t has slope s; the rate is
        exp(-s): below 1 the gradient vanishes going back, above 1 it explodes.
        `which` is "grad" (||dL/dh_t||) or "jacobian" (||dh_T/dh_t||_2).
        """
        if which == "grad":
            norms = self.grad_norms
        elif which == "jacobian" and self.jacobian_norms is not None:
            norms = self.jacobian_norms
        else:
            raise ArgumentError(f"GradFlowReport.rate: which must be 'grad' or 'jacobian' (if computed), got {which!r}")
        return decay_rate(norms, first, last)

    def _terms(self, name: str) -> np.ndarray:
        if name not in self.step_terms:
            raise ArgumentError(f"GradFlowReport: no parameter named {name!r}; have {', '.join(self.step_terms)}")
        return self.step_terms[name]

    def __str__(self) -> str:
        T = self.T
        picks = sorted({T, max(T // 2, 1), 1}, reverse=True)
        lines = [f"loss {self.loss:.6g} over T = {T} steps; ||grad of the layer|| = {self.total_norm:.4g}"]
        if self.clip_coef != 1.0:
            lines[0] += f", clipped by a factor {self.clip_coef:.4g}"
        lines.append("||dL/dh_t||     " + "  ".join(f"t={t}: {self.grad_norms[t - 1]:.3e}" for t in picks))
        if self.jacobian_norms is not None:
            lines.append("||dh_T/dh_t||_2 " + "  ".join(f"t={t}: {self.jacobian_norms[t - 1]:.3e}" for t in picks))
        lines.append(f"rate per step back in time: {_fmt_rate(self.rate('grad'))}")
        if self.spectral_radius is not None:
            lines.append(
                f"W_hh: spectral radius {self.spectral_radius:.4g}, largest singular value {self.sigma_max:.4g}"
            )
        for name in self.step_terms:
            err = self.term_sum_error(name)
            lines.append(f"dL/d{name} = sum of {T} per-step terms (max |sum - .grad| = {err:.1e})")
        return "\n".join(lines)


def _fmt_rate(rate: float) -> str:
    return "n/a" if not math.isfinite(rate) else f"{rate:.4f}"


def decay_rate(norms: np.ndarray, first: int = 1, last: int | None = None) -> float:
    """exp(-slope) of the least-squares line through log(norms[t]) over t = first..last (1-based).

    Entries that are zero, NaN or Inf carry no slope and are skipped; NaN if
    fewer than two remain.
    """
    values = np.asarray(norms, dtype=np.float64)
    last = len(values) if last is None else last
    if not 1 <= first <= last <= len(values):
        raise ArgumentError(f"decay_rate: need 1 <= first <= last <= {len(values)}, got first={first}, last={last}")
    t = np.arange(first, last + 1, dtype=np.float64)
    y = values[first - 1 : last]
    keep = np.isfinite(y) & (y > 0)
    if keep.sum() < 2:
        return math.nan
    slope = np.polyfit(t[keep], np.log(y[keep]), 1)[0]
    return float(np.exp(-slope))
