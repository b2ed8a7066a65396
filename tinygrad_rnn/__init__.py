"""tinygrad_rnn — reverse-mode autodiff on numpy, and recurrent networks built from it.

Reading order: tensor.py (the Tensor), engine.py (the tape and the backward
walk), ops.py (each primitive with its VJP), shapes.py (broadcasting), then
gradcheck.py, nn.py and docs/index.md.
"""

from .engine import Function, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .errors import (
    AnomalyError,
    DTypeError,
    GradcheckError,
    GradientError,
    IndexingError,
    ShapeError,
    TinygradRNNError,
)
from .tensor import Tensor, cat, concatenate, maximum, minimum, ones, split, stack, where, zeros

__version__ = "0.1.0"

__all__ = [
    "AnomalyError",
    "DTypeError",
    "Function",
    "GradcheckError",
    "GradientError",
    "IndexingError",
    "ShapeError",
    "Tensor",
    "TinygradRNNError",
    "cat",
    "concatenate",
    "enable_grad",
    "grad",
    "is_grad_enabled",
    "maximum",
    "minimum",
    "no_grad",
    "ones",
    "set_grad_enabled",
    "split",
    "stack",
    "where",
    "zeros",
]
