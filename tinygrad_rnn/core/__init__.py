"""core — the autodiff engine. Read tensor.py, then mode.py, function.py, backward.py (engine.py lists
their public names), ops.py, shapes.py, products.py; then the Tensor's named methods (tensor_math.py,
tensor_reduce.py, tensor_shape.py, tensor_convert.py) and tensor_functions.py; errors.py formats every message."""

from . import tensor as _tensor  # noqa: F401  # importing tensor.py hands Function its Tensor class
