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

from . import checks, core, func, inspect, io, nn, optim
from .checks import reference
from .checks.gradcheck import gradcheck, gradgradcheck
from .compile import compile
from .core.checkpoint import checkpoint
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
from .core.factories import (
    arange,
    default_generator,
    eye,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from .core.tensor import Size, Tensor, ValuesIndices, cat, concatenate, maximum, minimum, split, stack, where
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
    "Size",
    "Tensor",
    "TinygradRNNError",
    "ValuesIndices",
    "arange",
    "cat",
    "checkpoint",
    "checks",
    "compile",
    "concatenate",
    "core",
    "data",
    "default_generator",
    "enable_grad",
    "eye",
    "full",
    "full_like",
    "func",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "inspect",
    "io",
    "is_grad_enabled",
    "linspace",
    "load",
    "manual_seed",
    "maximum",
    "minimum",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "reference",
    "save",
    "set_grad_enabled",
    "split",
    "stack",
    "tensor",
    "trace",
    "where",
    "zeros",
    "zeros_like",
]
