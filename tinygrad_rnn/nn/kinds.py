"""nn/kinds.py — one description per recurrent cell kind. Read after layers.py, before recurrent.py.

A cell kind is everything that tells an Elman RNN, an LSTM and a GRU apart:

- how many gate blocks its weights stack (G: 1, 4, 3), hence the weight shapes
  weight_ih (G*H, D), weight_hh (G*H, H) unless the kind says otherwise, biases (G*H,);
- whether bias_hh can be folded into the input projection (it can whenever the
  step only ever uses b_ih + b_hh; the GRU keeps b_hn inside r * (...));
- the names of its state tensors (h, or h and c);
- its step function: the new state from the projected input and the old state.

recurrent.py runs any kind: `RNNCellBase` one step, `RNNBase` the loop over
time (layers, directions, lengths). RNNCell/RNN, LSTMCell/LSTM and GRUCell/GRU
are those two classes with a kind chosen. A new kind is one `CellKind` and
its step function, added with `register`; docs/rnn.md shows IndRNN.

A step receives `xw`, the input's share of every gate, x W_ih^T + b_ih (+ b_hh
when folded), computed for all time steps at once before the loop, and returns
the new state. There is no backward pass here: the steps are Tensor operations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

from ..core.errors import ArgumentError
from ..core.tensor import Tensor
from .functional import linear

State: TypeAlias = tuple[Tensor, ...]  # (h,) for RNN and GRU, (h, c) for LSTM


class Weights(NamedTuple):
    """One layer's (or cell's) parameters as a step uses them: W_ih, W_hh, b_ih, b_hh (biases may be None)."""

    ih: Tensor
    hh: Tensor
    b_ih: Tensor | None
    b_hh: Tensor | None


Step: TypeAlias = Callable[[Tensor, State, Weights], State]


def full_recurrent_weight(rows: int, hidden_size: int) -> tuple[int, ...]:
    """weight_hh's usual shape, (G*H, H): every gate reads the whole previous state."""
    return (rows, hidden_size)


@dataclass(frozen=True)
class CellKind:
    """What one kind of recurrent cell is; see the module docstring.

    name:        the registry key ("rnn_tanh", "lstm", ...), also the tests' parameter id
    layer_name:  the public layer that runs it, used in repr and error messages ("GRU")
    cell_name:   the public one-step cell ("GRUCell")
    step:        (xw, state, weights) -> new state
    gates:       G, the number of gate blocks stacked in weight_ih
    state_names: ("h",) or ("h", "c"); the layers take and return h0/h_n, c0/c_n
    fold_hidden_bias: whether bias_hh joins the input projection
    weight_hh_shape:  (G*H, H) -> weight_hh's shape; IndRNN's is (H,)
    setting:     the constructor setting that selects this kind, shown in repr ("nonlinearity='relu'")
    """

    name: str
    layer_name: str
    cell_name: str
    step: Step
    gates: int = 1
    state_names: tuple[str, ...] = ("h",)
    fold_hidden_bias: bool = True
    weight_hh_shape: Callable[[int, int], tuple[int, ...]] = full_recurrent_weight
    setting: str = ""

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        """PyTorch's names and shapes: weight_ih, weight_hh, bias_ih, bias_hh."""
        rows = self.gates * hidden_size
        return {
            "weight_ih": (rows, input_size),
            "weight_hh": self.weight_hh_shape(rows, hidden_size),
            "bias_ih": (rows,),
            "bias_hh": (rows,),
        }

    def project(self, x: Tensor, w: Weights) -> Tensor:
        """The input's share of every gate, x W_ih^T + b_ih (+ b_hh where folded): one matmul node."""
        bias = w.b_ih
        if self.fold_hidden_bias and w.b_hh is not None:
            bias = w.b_hh if bias is None else bias + w.b_hh
        return linear(x, w.ih, bias)


# ---------------------------------------------------------------- the step equations


def rnn_tanh_step(xw: Tensor, state: State, w: Weights) -> State:
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); xw = x W_ih^T + b_ih + b_hh is given"""
    (h,) = state
    return (linear(h, w.hh, xw).tanh(),)  # xw + h W_hh^T as one node: the input's share is the matmul's addend


def rnn_relu_step(xw: Tensor, state: State, w: Weights) -> State:
    """h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh)"""
    (h,) = state
    return (linear(h, w.hh, xw).relu(),)


def lstm_step(xw: Tensor, state: State, w: Weights) -> State:
    """PyTorch's LSTM, gate order i, f, g, o:

    i = σ(W_ii x + b_ii + W_hi h + b_hi)      input gate
    f = σ(W_if x + b_if + W_hf h + b_hf)      forget gate
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)   candidate cell
    o = σ(W_io x + b_io + W_ho h + b_ho)      output gate
    c' = f * c + i * g;   h' = o * tanh(c')

    xw = x W_ih^T + b_ih + b_hh, all four gates' input terms, is given.
    """
    h, c = state
    gates = linear(h, w.hh, xw)  # xw + h W_hh^T, one node
    i, f, g, o = gates.split(h.shape[-1], axis=-1)
    c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c_new.tanh(), c_new


def gru_step(xw: Tensor, state: State, w: Weights) -> State:
    """PyTorch's GRU, gate order r, z, n:

    r = σ(W_ir x + b_ir + W_hr h + b_hr)          reset gate
    z = σ(W_iz x + b_iz + W_hz h + b_hz)          update gate
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) candidate; b_hn stays inside r * (...)
    h' = (1 - z) * n + z * h

    xw = x W_ih^T + b_ih is given (b_hh cannot join it: b_hn sits inside r * (...)).
    """
    (h,) = state
    size = h.shape[-1]
    x_r, x_z, x_n = xw.split(size, axis=-1)
    h_r, h_z, h_n = linear(h, w.hh, w.b_hh).split(size, axis=-1)
    r = (x_r + h_r).sigmoid()
    z = (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh()
    return ((1.0 - z) * n + z * h,)


# ---------------------------------------------------------------- the registry

CELL_KINDS: dict[str, CellKind] = {}


def register(kind: CellKind) -> CellKind:
    """Add a kind to CELL_KINDS (the tests and `tinygrad-rnn gradcheck` check every registered kind)."""
    if kind.name in CELL_KINDS and CELL_KINDS[kind.name] != kind:
        raise ArgumentError(f"register: a different cell kind named {kind.name!r} is already registered")
    CELL_KINDS[kind.name] = kind
    return kind


def cell_kind(kind: CellKind | str) -> CellKind:
    """A CellKind, or the registered one of that name."""
    if isinstance(kind, CellKind):
        return kind
    if kind not in CELL_KINDS:
        raise ArgumentError(f"no cell kind named {kind!r}; the registered kinds are {', '.join(CELL_KINDS)}")
    return CELL_KINDS[kind]


RNN_TANH = register(CellKind("rnn_tanh", "RNN", "RNNCell", rnn_tanh_step))
RNN_RELU = register(CellKind("rnn_relu", "RNN", "RNNCell", rnn_relu_step, setting="nonlinearity='relu'"))
LSTM_KIND = register(CellKind("lstm", "LSTM", "LSTMCell", lstm_step, gates=4, state_names=("h", "c")))
GRU_KIND = register(CellKind("gru", "GRU", "GRUCell", gru_step, gates=3, fold_hidden_bias=False))
