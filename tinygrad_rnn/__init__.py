"""tinygrad_rnn — reverse-mode autodiff on numpy, and recurrent networks built from it.

Reading order: tensor.py (the Tensor), engine.py (the tape and the backward
walk), ops.py (each primitive with its VJP), shapes.py (broadcasting), then
gradcheck.py, nn.py and docs/index.md.
"""

from . import data, inspect, nn, optim, reference
from .engine import Function, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .errors import (
    AnomalyError,
    ArgumentError,
    CheckpointError,
    DTypeError,
    GradcheckError,
    GradientError,
    IndexingError,
    ShapeError,
    TinygradRNNError,
)
from .gradcheck import gradcheck, gradgradcheck
from .inspect import trace
from .serialization import load, save
from .tensor import Tensor, cat, concatenate, maximum, minimum, ones, split, stack, where, zeros

__version__ = "0.1.0"

__all__ = [
    "AnomalyError",
    "ArgumentError",
    "CheckpointError",
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
    "data",
    "enable_grad",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "inspect",
    "is_grad_enabled",
    "load",
    "maximum",
    "minimum",
    "nn",
    "no_grad",
    "ones",
    "optim",
    "reference",
    "save",
    "set_grad_enabled",
    "split",
    "stack",
    "trace",
    "where",
    "zeros",
]
