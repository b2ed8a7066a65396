"""inspect/watch.py — opt-in modes that watch the engine work: `backward_trace` and `detect_anomaly`.

Both subscribe to the engine's observer lists (`engine.forward_observers`,
`engine.backward_observers`) for the length of a `with` block and always
unsubscribe on the way out, even when the block raises. Outside them the
engine pays one loop over an empty list per node.

    with backward_trace() as bt:        # a row per VJP (per output for unbind, split), latest first
        loss.backward()
    print(bt)

    with detect_anomaly():              # AnomalyError at the first NaN/Inf, forward or backward
        loss = model(x); loss.backward()
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import ContextDecorator, ExitStack, contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import numpy as np

from ..core import engine
from ..core.errors import AnomalyError, fmt_shape
from ..core.tensor import Tensor

# ---------------------------------------------------------------- backward_trace


@dataclass
class GradInfo:
    """The shape, dtype and 2-norm of one gradient (the array itself is not kept)."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    norm: float

    @classmethod
    def of(cls, grad: Tensor) -> GradInfo:
        return cls(grad.shape, grad.dtype, float(np.linalg.norm(grad.data.ravel())))

    def __str__(self) -> str:
        return f"{fmt_shape(self.shape)} |{self.norm:.4g}|"


@dataclass
class VJPRecord:
    """One VJP as it ran: dL/d(output) in, dL/d(input) out for each input (None: no gradient)."""

    op: str
    seq: int  # the node's recording number, as `Function.seq` and `trace(...)[i].seq`
    tags: Mapping[str, Any]
    grad_out: GradInfo
    grads_in: tuple[GradInfo | None, ...]
    output: int | None = None  # which output's gradient, for a node with several (as `trace(...)[i].output`)

    @property
    def label(self) -> str:
        """`matmul`, or `unbind[2]` for one output of a node with several."""
        return self.op if self.output is None else f"{self.op}[{self.output}]"


class BackwardTrace(list[VJPRecord]):
    """The VJPs of one or more backward passes, in the order they ran; prints as a table."""

    def __str__(self) -> str:
        rows = [("#", "op", "tags", "grad_out shape |norm|", "grads to inputs")]
        for n, r in enumerate(self):
            tags = ", ".join(f"{k} {v}" for k, v in r.tags.items())
            ins = "; ".join("-" if g is None else str(g) for g in r.grads_in)
            rows.append((str(n), r.label, tags, str(r.grad_out), ins))
        widths = [max(len(row[c]) for row in rows) for c in range(4)]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4] for row in rows
        )


@contextmanager
def backward_trace() -> Iterator[BackwardTrace]:
    """Record every VJP that runs inside the block: op, tags, shapes and norms of the gradients."""
    records = BackwardTrace()

    def observe(node: engine.Function, grad_outs: tuple[Tensor, ...], grads_in: tuple[Tensor | None, ...]) -> None:
        infos = tuple(None if g is None else GradInfo.of(g) for g in grads_in)
        several = getattr(node, "outputs", None) is not None  # unbind, split: one record per output
        for k, grad_out in enumerate(grad_outs):
            records.append(
                VJPRecord(node.name, node.seq, node.tags, GradInfo.of(grad_out), infos, k if several else None)
            )

    with engine._observing(backward=observe):
        yield records


# ---------------------------------------------------------------- detect_anomaly

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _user_frame() -> FrameType | None:
    """The innermost frame outside tinygrad_rnn: the line of user code that asked for the op."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return frame


def _where(node: engine.Function) -> str:
    site = getattr(node, "created_at", None)
    if site is None:
        return "it was recorded before detect_anomaly() was entered, so its location is unknown"
    filename, line, function = site
    return f"created at {filename}:{line} in {function}()"


def _bad_values(array: np.ndarray) -> str | None:
    """'2 nan, 1 inf' when the array is not all finite, else None."""
    if array.dtype.kind not in "fc" or np.isfinite(array).all():
        return None
    nan = int(np.isnan(array).sum())
    inf = int(array.size - nan - np.isfinite(array).sum())
    return ", ".join(f"{n} {what}" for n, what in ((nan, "nan"), (inf, "inf")) if n)


def _describe(node: engine.Function) -> str:
    tags = ", ".join(f"{k}={v!r}" for k, v in node.tags.items())
    return f"{node.name}" + (f" [{tags}]" if tags else "")


class detect_anomaly(ContextDecorator):
    """Raise AnomalyError at the first op whose output, or whose backward gradient, has NaN or Inf.

    Works as `with detect_anomaly():` and as `@detect_anomaly()`. While on,
    each recorded op also remembers the user line that created it (in
    `node.created_at`), so a gradient that turns NaN in backward points at the
    forward code responsible. Only recorded ops are checked: under no_grad, or
    on tensors that do not require grad, nothing is recorded and nothing checked.
    """

    def __init__(self) -> None:
        self._stacks: list[ExitStack] = []  # one per active `with`, so a decorated function can recurse

    def __enter__(self) -> detect_anomaly:
        stack = ExitStack()
        stack.enter_context(engine._observing(forward=_check_forward, backward=_check_backward))
        self._stacks.append(stack)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stacks.pop().close()


def _check_forward(node: engine.Function, out: Tensor) -> None:
    frame = _user_frame()
    if frame is not None:
        # Through vars(): `created_at` is a study-tool label in the node's __dict__, not a declared attribute.
        vars(node)["created_at"] = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
    bad = _bad_values(out.data)
    if bad is None:
        return
    parents = node.parents or ()
    inputs = ", ".join("-" if p is None else f"{fmt_shape(p.shape)}" for p in parents)
    already = [i for i, p in enumerate(parents) if p is not None and _bad_values(p.data)]
    cause = f"; input {already[0]} already contained nan/inf" if already else ""
    raise AnomalyError(
        f"{_describe(node)}: forward output of shape {fmt_shape(out.shape)} contains {bad} "
        f"(inputs {inputs}){cause}; {_where(node)}"
    )


def _check_incoming(node: engine.Function, grad_out: Tensor) -> None:
    bad = _bad_values(grad_out.data)
    if bad is not None:
        raise AnomalyError(
            f"{_describe(node)}: the gradient arriving at its output of shape {fmt_shape(grad_out.shape)} "
            f"contains {bad} (from the seed passed to backward() or from a hook); {_where(node)}"
        )


def _check_backward(node: engine.Function, grad_outs: tuple[Tensor, ...], grads_in: tuple[Tensor | None, ...]) -> None:
    for grad_out in grad_outs:
        _check_incoming(node, grad_out)
    grad_out = grad_outs[0]
    for i, g in enumerate(grads_in):
        bad = None if g is None else _bad_values(g.data)
        if g is not None and bad is not None:
            raise AnomalyError(
                f"{_describe(node)}.backward: the gradient for input {i} of shape {fmt_shape(g.shape)} "
                f"contains {bad}, though the incoming gradient of shape {fmt_shape(grad_out.shape)} "
                f"was finite; {_where(node)}"
            )
