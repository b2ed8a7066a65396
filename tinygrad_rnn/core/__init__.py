"""core — the autodiff engine. Read tensor.py, then engine.py, ops.py, shapes.py; errors.py formats every message."""
