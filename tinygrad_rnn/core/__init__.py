"""core — the autodiff engine. Read tensor.py, then mode.py, function.py, backward.py (engine.py lists
their public names), ops.py, products.py, shapes.py; errors.py formats every message."""

from . import tensor as _tensor  # noqa: F401  # importing tensor.py hands Function its Tensor class
