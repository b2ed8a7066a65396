"""engine.py — the engine's public names in one place. Read tensor.py first, then the three modules:

    mode.py       grad mode (no_grad, ...), scope labels, observers (the study tools' hook)
    function.py   Function: a primitive, and once applied a node of the tape, with its saved values
    backward.py   the backward walk: topological order, one _Pass per backward(), grad()

Imports run one way: tensor -> ops -> function -> mode, and tensor -> backward -> function.
Nothing here imports tensor.py at run time (see function.py for how Tensors are still made).
"""

from __future__ import annotations

from .backward import backward, grad, seed_gradient, topological_order
from .function import Function
from .mode import (
    backward_observers,
    enable_grad,
    forward_observers,
    is_grad_enabled,
    no_grad,
    observe,
    scope,
    set_grad_enabled,
)

__all__ = [
    "Function",
    "backward",
    "backward_observers",
    "enable_grad",
    "forward_observers",
    "grad",
    "is_grad_enabled",
    "no_grad",
    "observe",
    "scope",
    "seed_gradient",
    "set_grad_enabled",
    "topological_order",
]
