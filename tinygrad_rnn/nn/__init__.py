"""tinygrad_rnn.nn — layers composed from tensor operations. No layer writes a backward pass.

Read module.py (Parameter, Module), then the layers, then recurrent.py, where an
RNN is a Python for-loop over a cell and BPTT is the engine's ordinary backward.
"""

from .module import Module, ModuleList, Parameter

__all__ = ["Module", "ModuleList", "Parameter"]
