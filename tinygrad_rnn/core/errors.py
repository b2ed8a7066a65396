"""errors.py — the exception hierarchy, and the one helper that formats shapes in messages.

Every error a user can trigger derives from `TinygradRNNError`, and also from the
builtin exception a Python user would expect (`ValueError` for a bad shape,
`AssertionError` for a failed gradient check), so both `except` styles work.
Messages name the operation, the shapes or dtypes involved, and a remedy.
"""

from __future__ import annotations

from typing import Any


class TinygradRNNError(Exception):
    """Base class of every error raised by tinygrad_rnn."""


class ShapeError(TinygradRNNError, ValueError):
    """Operands whose shapes do not fit the operation."""


class IndexingError(ShapeError, IndexError):
    """An index that does not fit the tensor's shape."""


class DTypeError(TinygradRNNError, TypeError):
    """An operand whose dtype the operation cannot use (for example an integer leaf that requires grad)."""


class GradientError(TinygradRNNError, RuntimeError):
    """A misuse of the backward pass: a freed graph, a non-scalar root without `grad`, a bad VJP."""


class AnomalyError(GradientError):
    """A NaN or Inf found by anomaly detection (see `tinygrad_rnn.inspect`)."""


class GradcheckError(TinygradRNNError, AssertionError):
    """Analytic and numeric derivatives disagree. `.report` holds the per-input comparison."""

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class ArgumentError(TinygradRNNError, ValueError):
    """An argument value the function cannot use: a negative learning rate, an unknown reduction, lag >= T."""


class CheckpointError(TinygradRNNError, ValueError):
    """A file or state dict that cannot be read, or that does not fit what it is loaded into."""


def fmt_shape(shape: tuple[int, ...]) -> str:
    """Format a shape the way numpy prints it: (3,), (2, 4), () for a scalar."""
    return str(tuple(int(n) for n in shape))
