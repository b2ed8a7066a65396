"""tinygrad_rnn — reverse-mode autodiff on numpy, and recurrent networks built from it.

The package tree is the architecture; read it in this order:

- core/     the Tensor, the engine (tape and backward walk), the primitives
            with their VJPs, broadcasting, errors;
- checks/   gradcheck, Hypothesis strategies (check_op), a hand-written BPTT;
- nn/, optim/  layers built only from core; optimizers and learning-rate schedulers;
- io/       save/load and data sets;
- inspect/  study tools: the tape, DOT, memory, backward watchers, gradient
            flow and gradient health;
- cli/      the `tinygrad-rnn` command and the experiments it runs.

docs/index.md gives the same order, file by file.
"""

from . import checks, core, inspect, io, nn, optim
from .checks import reference
from .checks.gradcheck import gradcheck, gradgradcheck
from .core.engine import Function, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .core.errors import (
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
from .core.tensor import Tensor, cat, concatenate, maximum, minimum, ones, split, stack, where, zeros
from .inspect import trace
from .io import data
from .io.serialization import load, save

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
    "checks",
    "concatenate",
    "core",
    "data",
    "enable_grad",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "inspect",
    "io",
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
