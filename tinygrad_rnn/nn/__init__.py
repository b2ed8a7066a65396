"""tinygrad_rnn.nn — layers composed from tensor operations. No layer writes a backward pass.

Read module.py (Parameter, Module), layers.py (Linear), then kinds.py (one
description per recurrent cell kind), cells.py (one step) and recurrent.py,
where an RNN is a Python for-loop over a cell and BPTT is the engine's ordinary
backward. sequence.py holds padded batches and truncated BPTT, functional.py
the losses and activations as functions (loss.py and activation.py as modules,
for Sequential), utils.py the gradient clipping.
"""

from . import functional, init, through_time, utils
from .activation import Dropout, Identity, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .cells import GRUCell, LSTMCell, RNNCell, RNNCellBase
from .kinds import CELL_KINDS, CellKind
from .layers import Embedding, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import Module, ModuleDict, ModuleList, Parameter, RemovableHandle, Sequential
from .recurrent import GRU, LSTM, RNN, RNNBase
from .sequence import Chunk, detach_state, pad_sequence, tbptt_chunks
from .through_time import checkpointed, rtrl

__all__ = [
    "CELL_KINDS",
    "GRU",
    "LSTM",
    "RNN",
    "BCEWithLogitsLoss",
    "CellKind",
    "Chunk",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "GRUCell",
    "Identity",
    "L1Loss",
    "LSTMCell",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "RNNBase",
    "RNNCell",
    "RNNCellBase",
    "ReLU",
    "RemovableHandle",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
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
