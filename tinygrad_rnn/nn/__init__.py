"""tinygrad_rnn.nn — layers composed from tensor operations. No layer writes a backward pass.

Read module.py (Parameter, Module), layers.py (Linear), then recurrent.py, where
an RNN is a Python for-loop over a cell and BPTT is the engine's ordinary
backward. functional.py holds the losses, utils.py the gradient clipping.
"""

from . import functional, init, through_time, utils
from .layers import Linear
from .module import Module, ModuleList, Parameter
from .recurrent import GRU, LSTM, RNN, Chunk, GRUCell, LSTMCell, RNNCell, detach_state, pad_sequence, tbptt_chunks
from .through_time import checkpointed, rtrl

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Chunk",
    "GRUCell",
    "LSTMCell",
    "Linear",
    "Module",
    "ModuleList",
    "Parameter",
    "RNNCell",
    "checkpointed",
    "detach_state",
    "functional",
    "init",
    "pad_sequence",
    "rtrl",
    "tbptt_chunks",
    "through_time",
    "utils",
]
