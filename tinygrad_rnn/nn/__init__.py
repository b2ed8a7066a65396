"""tinygrad_rnn.nn — layers composed from tensor operations. No layer writes a backward pass.

Read module.py (Parameter, Module), layers.py (Linear), then kinds.py (one
description per recurrent cell kind), cells.py (one step) and recurrent.py,
where an RNN is a Python for-loop over a cell and BPTT is the engine's ordinary
backward. sequence.py holds padded batches and truncated BPTT, functional.py
the losses, utils.py the gradient clipping.
"""

from . import functional, init, utils
from .cells import GRUCell, LSTMCell, RNNCell, RNNCellBase
from .kinds import CELL_KINDS, CellKind
from .layers import Linear
from .module import Module, ModuleList, Parameter
from .recurrent import GRU, LSTM, RNN, RNNBase
from .sequence import Chunk, detach_state, pad_sequence, tbptt_chunks

__all__ = [
    "CELL_KINDS",
    "GRU",
    "LSTM",
    "RNN",
    "CellKind",
    "Chunk",
    "GRUCell",
    "LSTMCell",
    "Linear",
    "Module",
    "ModuleList",
    "Parameter",
    "RNNBase",
    "RNNCell",
    "RNNCellBase",
    "detach_state",
    "functional",
    "init",
    "pad_sequence",
    "tbptt_chunks",
    "utils",
]
