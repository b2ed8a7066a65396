"""nn/recurrent.py — RNN, LSTM and GRU: a cell, and a Python for-loop over time. Read after layers.py.

There is no backward pass in this file. A layer applies its cell once per time
step, and every step is ordinary Tensor operations recorded on the tape; the
unrolled graph is a deep feed-forward graph whose weights appear once per step.
Backpropagation through time (BPTT) is then the engine's ordinary backward
walk over that graph, and dL/dW_hh comes out as a sum over steps because the
engine adds up the gradients of a tensor used several times (docs/rnn.md
derives it; tinygrad_rnn/checks/reference.py does it by hand).

Each step is recorded inside `engine.scope(module="rnn.l0", step=t)` (with the
layer's class name and index), so study tools can fold the graph by time step.

The input projection x_t W_ih^T + b is hoisted out of the loop: one
(T, B, D) @ (D, G) matmul for all steps, taken apart by `unbind` (one node
whose VJP is a single stack; slicing step t out with getitem would scatter
into a zero array of the full (T, B, G) shape at every step, O(T^2) work).
Every x W^T is `functional.linear`: one matmul node with its transpose flag,
so no transpose node appears in the graph. For RNN and LSTM, which only ever
use b_ih + b_hh, both biases go into the hoisted projection. A step is then
one matmul, one add and the nonlinearity. The cells (RNNCell, ...) run the
same step functions on one x_t.

Readout. The output o_t = f(W_oh h_t + b_o) is a `Linear` (layers.py) applied to
the layer's output. Sequence to sequence, at every step::

    rnn, readout = RNN(3, 8), Linear(8, 2)
    output, h_n = rnn(x)                 # output (T, B, 8)
    o = readout(output)                  # o (T, B, 2): o_t = W_oh h_t + b_o

Sequence to one, at the last step only::

    o = readout(h_n[-1])                 # (B, 2): the top layer's final state

With `lengths`, h_n[-1] holds each sequence's state at its own last step, which
is what sequence-to-one wants (output[-1] would be zeros for the shorter ones).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeAlias

import numpy as np

from ..core.engine import scope
from ..core.errors import ArgumentError, DTypeError, ShapeError, fmt_shape
from ..core.tensor import Tensor, as_tensor, concatenate, stack, where
from .functional import linear
from .init import RNG, default_uniform_, make_rng
from .module import Module, Parameter, as_input

State: TypeAlias = tuple[Tensor, ...]  # (h,) for RNN and GRU, (h, c) for LSTM


class _Weights(NamedTuple):
    """One layer's parameters as a step uses them: W_ih, W_hh, b_ih, b_hh (biases may be None)."""

    ih: Tensor
    hh: Tensor
    b_ih: Tensor | None
    b_hh: Tensor | None


# ---------------------------------------------------------------- the three step equations


def _project(x: Tensor, w: _Weights, fold_hidden_bias: bool) -> Tensor:
    """The input's share of every gate, x W_ih^T + b_ih (+ b_hh where the cell only uses the sum)."""
    bias = w.b_ih
    if fold_hidden_bias and w.b_hh is not None:
        bias = w.b_hh if bias is None else bias + w.b_hh
    return linear(x, w.ih, bias)


def _rnn_step(xw: Tensor, state: State, w: _Weights, nonlinearity: str) -> State:
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)   (or relu); xw = x W_ih^T + b_ih + b_hh is given"""
    (h,) = state
    pre = linear(h, w.hh, xw)  # xw + h W_hh^T as one node: the input's share is the matmul's addend
    return (pre.tanh() if nonlinearity == "tanh" else pre.relu(),)


def _lstm_step(xw: Tensor, state: State, w: _Weights) -> State:
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


def _gru_step(xw: Tensor, state: State, w: _Weights) -> State:
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


# ---------------------------------------------------------------- shared checks


def _check_nonlinearity(owner: str, nonlinearity: str) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise ArgumentError(f"{owner}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity


def _check_sizes(owner: str, input_size: int, hidden_size: int) -> None:
    if input_size < 1 or hidden_size < 1:
        raise ArgumentError(f"{owner}: input_size and hidden_size must be positive, got {input_size}, {hidden_size}")


def _check_state(
    owner: object, name: str, value: Any, expected: tuple[int, ...], meaning: str, dtype: np.dtype[Any]
) -> Tensor:
    tensor = as_input(owner, name, value, dtype)
    if tensor.shape != expected:
        raise ShapeError(
            f"{owner}: {name} has shape {fmt_shape(tensor.shape)}, expected {fmt_shape(expected)} {meaning}"
        )
    return tensor


def _state_names(gates: int) -> tuple[str, ...]:
    return ("h0", "c0") if gates == 4 else ("h0",)


def _split_hx(owner: object, hx: Any, gates: int) -> list[Any]:
    """hx as a list with one entry per state tensor: [h0] or, for an LSTM, [h0, c0]."""
    if gates != 4:
        return [hx]
    if not isinstance(hx, tuple | list) or len(hx) != 2:
        raise ShapeError(f"{owner}: hx must be a pair (h0, c0), got {type(hx).__name__}")
    return list(hx)


# ---------------------------------------------------------------- cells: one step


class _Cell(Module):
    """The parameters and checks an RNNCell, LSTMCell and GRUCell share; `gates` is 1, 4 or 3."""

    gates: ClassVar[int]
    folds_hidden_bias: ClassVar[bool] = True  # False for GRU, whose b_hn is not added to the input's share

    def __init__(self, input_size: int, hidden_size: int, bias: bool, dtype: Any, rng: RNG) -> None:
        _check_sizes(type(self).__name__, input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = self.gates * hidden_size
        self.weight_ih = Parameter(np.zeros((rows, input_size)), dtype=dtype)
        self.weight_hh = Parameter(np.zeros((rows, hidden_size)), dtype=dtype)
        self.bias_ih = Parameter(np.zeros(rows), dtype=dtype) if bias else None
        self.bias_hh = Parameter(np.zeros(rows), dtype=dtype) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: RNG = None) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
        default_uniform_(self.parameters(), self.hidden_size, rng=make_rng(rng))

    def _weights(self) -> _Weights:
        return _Weights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)

    def _step(self, x: Tensor, state: State, w: _Weights) -> State:
        raise NotImplementedError

    def _run(self, input: Any, hx: Any) -> State:
        """Check shapes, make a missing state zeros, run one step; unbatched (D,) in gives (H,) out."""
        owner = self  # its repr names it in errors; made only when one is raised (~1.8 us a repr, timeit)
        x = as_input(owner, "input", input, self.weight_hh.dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ShapeError(
                f"{owner}: input has shape {fmt_shape(x.shape)}, expected (batch, input_size={self.input_size}) "
                f"or unbatched (input_size={self.input_size},)"
            )
        batched = x.ndim == 2
        if not batched:
            x = x.reshape(1, self.input_size)
        batch = x.shape[0]
        count = 2 if self.gates == 4 else 1
        expected = (batch, self.hidden_size) if batched else (self.hidden_size,)
        meaning = "(batch, hidden_size)" if batched else "(hidden_size,) for an unbatched input"
        if hx is None:
            state = tuple(Tensor(np.zeros((batch, self.hidden_size), dtype=self.weight_hh.dtype)) for _ in range(count))
        else:
            given = _split_hx(owner, hx, self.gates)
            names = ("h", "c") if count == 2 else ("hx",)
            checked = [
                _check_state(owner, n, v, expected, meaning, self.weight_hh.dtype)
                for n, v in zip(names, given, strict=True)
            ]
            # an unbatched state becomes one row; a batched one is used as it is (no reshape node per step)
            state = tuple(checked) if batched else tuple(s.reshape(batch, self.hidden_size) for s in checked)
        with scope(module=type(self).__name__.lower()):
            w = self._weights()
            new = self._step(_project(x, w, self.folds_hidden_bias), state, w)
        return new if batched else tuple(s.reshape(self.hidden_size) for s in new)

    def extra_repr(self) -> str:
        extra = "" if self.bias_ih is not None else ", bias=False"
        return f"{self.input_size}, {self.hidden_size}{extra}"


class RNNCell(_Cell):
    """One step of an Elman RNN:  h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh).

    In the textbook's notation this is h_t = tanh(W_hx x_t + W_hh h_{t-1} + b_h),
    with W_hx = weight_ih (H, D), W_hh = weight_hh (H, H) and b_h = bias_ih + bias_hh:
    PyTorch keeps two biases where one would do, and so do we, for compatible
    state dicts. `nonlinearity='relu'` uses relu in place of tanh.

    `cell(x, hx=None)`: x is (B, D) or unbatched (D,); hx is (B, H) or (H,),
    zeros if omitted. Returns h' of the same batchedness.

    >>> cell = RNNCell(3, 4, rng=0)
    >>> h = cell(np.ones((2, 3)))
    >>> h = cell(np.ones((2, 3)), h)
    >>> h.shape
    (2, 4)
    """

    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        dtype: Any = np.float64,
        rng: RNG = None,
    ) -> None:
        self.nonlinearity = _check_nonlinearity("RNNCell", nonlinearity)
        super().__init__(input_size, hidden_size, bias, dtype, rng)

    def _step(self, x: Tensor, state: State, w: _Weights) -> State:
        return _rnn_step(x, state, w, self.nonlinearity)

    def forward(self, input: Any, hx: Any = None) -> Tensor:
        return self._run(input, hx)[0]

    def extra_repr(self) -> str:
        extra = "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"
        return super().extra_repr() + extra


class LSTMCell(_Cell):
    """One LSTM step, PyTorch's equations and gate order (i, f, g, o):

        i = σ(W_ii x + b_ii + W_hi h + b_hi),   f = σ(W_if x + b_if + W_hf h + b_hf)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg), o = σ(W_io x + b_io + W_ho h + b_ho)
        c' = f * c + i * g,   h' = o * tanh(c')

    weight_ih is (4H, D) = [W_ii; W_if; W_ig; W_io] stacked by rows, weight_hh is (4H, H).
    `cell(x, hx=None)` with hx = (h, c) returns (h', c').
    """

    gates = 4

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = np.float64, rng: RNG = None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, dtype, rng)

    def _step(self, x: Tensor, state: State, w: _Weights) -> State:
        return _lstm_step(x, state, w)

    def forward(self, input: Any, hx: Any = None) -> tuple[Tensor, Tensor]:
        h, c = self._run(input, hx)
        return h, c


class GRUCell(_Cell):
    """One GRU step, PyTorch's equations and gate order (r, z, n):

        r = σ(W_ir x + b_ir + W_hr h + b_hr),   z = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    weight_ih is (3H, D) = [W_ir; W_iz; W_in], weight_hh is (3H, H).
    `cell(x, hx=None)` returns h'.
    """

    gates = 3
    folds_hidden_bias = False

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = np.float64, rng: RNG = None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, dtype, rng)

    def _step(self, x: Tensor, state: State, w: _Weights) -> State:
        return _gru_step(x, state, w)

    def forward(self, input: Any, hx: Any = None) -> Tensor:
        return self._run(input, hx)[0]


# ---------------------------------------------------------------- layers: the loop over time


class _Recurrent(Module):
    """What RNN, LSTM and GRU share: PyTorch's parameter names, the checks, and the loop over time."""

    gates: ClassVar[int]
    folds_hidden_bias: ClassVar[bool] = True  # False for GRU, whose b_hn is not added to the input's share

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dtype: Any = np.float64,
        rng: RNG = None,
    ) -> None:
        _check_sizes(type(self).__name__, input_size, hidden_size)
        if num_layers < 1:
            raise ArgumentError(f"{type(self).__name__}: num_layers must be at least 1, got {num_layers}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dtype = np.dtype(dtype)
        rows = self.gates * hidden_size
        for k in range(num_layers):
            # Layer k > 0 reads layer k-1's hidden state, so its input size is hidden_size.
            fan_in = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", Parameter(np.zeros((rows, fan_in)), dtype=dtype))
            setattr(self, f"weight_hh_l{k}", Parameter(np.zeros((rows, hidden_size)), dtype=dtype))
            if bias:
                setattr(self, f"bias_ih_l{k}", Parameter(np.zeros(rows), dtype=dtype))
                setattr(self, f"bias_hh_l{k}", Parameter(np.zeros(rows), dtype=dtype))
        self.reset_parameters(rng)

    def reset_parameters(self, rng: RNG = None) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
        default_uniform_(self.parameters(), self.hidden_size, rng=make_rng(rng))

    if TYPE_CHECKING:
        # The per-layer parameters (weight_ih_l0, ...) are set with setattr; this tells a
        # type checker that `rnn.weight_hh_l0` is a Parameter. It does not exist at run time.
        def __getattr__(self, name: str) -> Parameter: ...

    def _layer_weights(self, k: int) -> _Weights:
        b_ih: Tensor | None = getattr(self, f"bias_ih_l{k}", None)
        b_hh: Tensor | None = getattr(self, f"bias_hh_l{k}", None)
        return _Weights(getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}"), b_ih, b_hh)

    def _step(self, x: Tensor, state: State, w: _Weights) -> State:
        raise NotImplementedError

    # ------------------------------------------------------------ checks

    def _check_input(self, input: Any) -> tuple[Tensor, bool]:
        """The input as (T, B, D), and whether it was batched."""
        x = as_input(self, "input", input, self.weight_hh_l0.dtype)
        layout = "(batch, T, input_size)" if self.batch_first else "(T, batch, input_size)"
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ShapeError(
                f"{self!r}: input has shape {fmt_shape(x.shape)}, expected {layout} with "
                f"input_size={self.input_size}, or unbatched (T, input_size)"
            )
        batched = x.ndim == 3
        if not batched:
            x = x.reshape(x.shape[0], 1, self.input_size)
        elif self.batch_first:
            x = x.permute(1, 0, 2)
        if x.shape[0] == 0:
            raise ShapeError(f"{self!r}: input has shape {fmt_shape(x.shape)}, with no time steps")
        return x, batched

    def _check_lengths(self, lengths: Any, steps: int, batch: int, batched: bool) -> np.ndarray | None:
        if lengths is None:
            return None
        owner = repr(self)
        if not batched:
            raise ShapeError(f"{owner}: lengths needs a batched input; an unbatched input is one whole sequence")
        array = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
        if array.shape != (batch,):
            raise ShapeError(
                f"{owner}: lengths has shape {fmt_shape(array.shape)}, expected one length per sequence, ({batch},)"
            )
        if array.dtype.kind not in "iu":
            raise DTypeError(f"{owner}: lengths must be integers, got dtype {array.dtype}")
        for i, n in enumerate(array.tolist()):
            if n < 1:
                raise ShapeError(f"{owner}: lengths[{i}] = {n}; every sequence needs at least 1 step")
            if n > steps:
                raise ShapeError(f"{owner}: lengths[{i}] = {n}, but the input has only T = {steps} steps")
        return array

    def _initial_states(self, hx: Any, batch: int, batched: bool, dtype: Any) -> list[State]:
        """One state per layer from hx ((num_layers, B, H) tensors), or zeros."""
        size, layers = self.hidden_size, self.num_layers
        count = 2 if self.gates == 4 else 1
        if hx is None:
            zeros = Tensor(np.zeros((batch, size), dtype=dtype))
            return [(zeros,) * count for _ in range(layers)]
        owner = repr(self)
        expected = (layers, batch, size) if batched else (layers, size)
        meaning = "(num_layers, batch, hidden_size)" if batched else "(num_layers, hidden_size) for an unbatched input"
        given = _split_hx(owner, hx, self.gates)
        checked = [
            _check_state(owner, name, value, expected, meaning, self.weight_hh_l0.dtype).reshape(layers, batch, size)
            for name, value in zip(_state_names(self.gates), given, strict=True)
        ]
        return [tuple(s[k] for s in checked) for k in range(layers)]

    # ------------------------------------------------------------ the loop

    def _run(self, input: Any, hx: Any, lengths: Any) -> tuple[Tensor, State]:
        """Shared forward: returns (output, final state stacked over layers)."""
        x, batched = self._check_input(input)
        steps, batch = x.shape[0], x.shape[1]
        lengths_array = self._check_lengths(lengths, steps, batch, batched)
        states = self._initial_states(hx, batch, batched, self.weight_hh_l0.dtype)
        name = type(self).__name__.lower()
        if lengths_array is not None:
            # Padding is replaced by 0 before the projection, so its values (even inf or nan)
            # never reach a matmul, forward or backward.
            alive_steps = np.arange(steps)[:, None, None] < lengths_array[None, :, None]
            x = where(alive_steps, x, 0.0)
        layer_input = x
        finals = []
        for k in range(self.num_layers):
            with scope(module=f"{name}.l{k}"):
                w = self._layer_weights(k)
                inputs = _project(layer_input, w, self.folds_hidden_bias).unbind(0)
            state, outputs = states[k], []
            for t in range(steps):
                with scope(module=f"{name}.l{k}", step=t):
                    # Mask only from the first step some sequence has finished: until then every
                    # row is live, and the graph is the same as without lengths.
                    if lengths_array is None or t < lengths_array.min():
                        state = self._step(inputs[t], state, w)
                        outputs.append(state[0])
                        continue
                    alive = (lengths_array > t)[:, None]
                    # Finished rows keep their state and output 0. `where` selects rather than
                    # multiplying by a 0/1 mask, so the discarded rows get exactly zero gradient.
                    new = self._step(inputs[t], state, w)
                    state = tuple(where(alive, n, s) for n, s in zip(new, state, strict=True))
                    outputs.append(where(alive, state[0], 0.0))
            finals.append(state)
            layer_input = stack(outputs, axis=0)  # the next layer reads this layer's hidden states
        output = layer_input
        final = tuple(stack([f[i] for f in finals], axis=0) for i in range(len(finals[0])))
        if not batched:
            output = output.reshape(steps, self.hidden_size)
            final = tuple(f.reshape(self.num_layers, self.hidden_size) for f in final)
        elif self.batch_first:
            output = output.permute(1, 0, 2)
        return output, final

    def extra_repr(self) -> str:
        parts = [f"{self.input_size}, {self.hidden_size}"]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        if not self.bias:
            parts.append("bias=False")
        if self.batch_first:
            parts.append("batch_first=True")
        return ", ".join(parts)


_LAYER_DOC = """
    Shapes (PyTorch's): x is (T, B, D), or (B, T, D) with batch_first=True, or
    unbatched (T, D). output is (T, B, H) (or (B, T, H), or (T, H)): the top
    layer's hidden state at every step. h_n is (num_layers, B, H) (or
    (num_layers, H)): each layer's state after the last step. Parameters are
    weight_ih_l{k} (G*H, D or H), weight_hh_l{k} (G*H, H), bias_ih_l{k} and
    bias_hh_l{k} (G*H,), all ~ U(-1/sqrt(H), 1/sqrt(H)).

    Variable lengths: with `lengths` (one int per sequence, 1 <= length <= T)
    the input is a padded batch (see `pad_sequence`). Step t updates only the
    sequences with length > t; the rest keep their state, so h_n holds each
    sequence's state at its own last step, and output is 0 at padded positions.
    No gradient flows from padded positions: results are the same as running
    each sequence alone.
"""


class RNN(_Recurrent):
    """A multi-layer Elman RNN: for each layer and step, h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).

    `rnn(x, h0=None, lengths=None)` returns (output, h_n). G = 1.
    """

    __doc__ = (__doc__ or "") + _LAYER_DOC
    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dtype: Any = np.float64,
        rng: RNG = None,
    ) -> None:
        self.nonlinearity = _check_nonlinearity("RNN", nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dtype, rng)

    def _step(self, x: Tensor, state: State, w: _Weights) -> State:
        return _rnn_step(x, state, w, self.nonlinearity)

    def forward(self, input: Any, h0: Any = None, lengths: Any = None) -> tuple[Tensor, Tensor]:
        output, (h_n,) = self._run(input, h0, lengths)
        return output, h_n

    def extra_repr(self) -> str:
        extra = "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"
        return super().extra_repr() + extra


class LSTM(_Recurrent):
    """A multi-layer LSTM; each step is `LSTMCell`'s equations (gate order i, f, g, o).

    `lstm(x, hx=None, lengths=None)` with hx = (h0, c0) returns (output, (h_n, c_n)). G = 4.
    """

    __doc__ = (__doc__ or "") + _LAYER_DOC
    gates = 4

    def _step(self, x: Tensor, state: State, w: _Weights) -> State:
        return _lstm_step(x, state, w)

    def forward(self, input: Any, hx: Any = None, lengths: Any = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        output, (h_n, c_n) = self._run(input, hx, lengths)
        return output, (h_n, c_n)


class GRU(_Recurrent):
    """A multi-layer GRU; each step is `GRUCell`'s equations (gate order r, z, n).

    `gru(x, h0=None, lengths=None)` returns (output, h_n). G = 3.
    """

    __doc__ = (__doc__ or "") + _LAYER_DOC
    gates = 3
    folds_hidden_bias = False

    def _step(self, x: Tensor, state: State, w: _Weights) -> State:
        return _gru_step(x, state, w)

    def forward(self, input: Any, h0: Any = None, lengths: Any = None) -> tuple[Tensor, Tensor]:
        output, (h_n,) = self._run(input, h0, lengths)
        return output, h_n


# ---------------------------------------------------------------- padded batches


def pad_sequence(
    sequences: Sequence[Any], batch_first: bool = False, padding_value: float = 0.0
) -> tuple[Tensor, np.ndarray]:
    """Stack sequences of different lengths into one padded batch; returns (padded, lengths).

    Each sequence is (L_i, *rest) with the same `rest`. padded is (T, B, *rest)
    with T = max L_i (or (B, T, *rest) with batch_first=True); lengths is an int
    array of the L_i, ready for `RNN(..., lengths=lengths)`. Composed from
    concatenate and stack, so gradients flow back to sequences that require grad.
    (PyTorch's pad_sequence returns only the padded tensor.)

    >>> padded, lengths = pad_sequence([np.ones((3, 2)), np.ones((1, 2))])
    >>> padded.shape, lengths.tolist()
    ((3, 2, 2), [3, 1])
    >>> padded.numpy()[:, 1, 0].tolist()
    [1.0, 0.0, 0.0]
    """
    tensors = [as_tensor(s) for s in sequences]
    if not tensors:
        raise ShapeError("pad_sequence: needs at least one sequence")
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ShapeError(f"pad_sequence: sequence {i} is 0-d; each sequence needs a time axis first")
        if t.shape[1:] != tensors[0].shape[1:]:
            raise ShapeError(
                f"pad_sequence: sequence {i} has shape {fmt_shape(t.shape)} but sequence 0 has "
                f"{fmt_shape(tensors[0].shape)}; all must agree after the first (time) axis"
            )
    lengths = np.array([t.shape[0] for t in tensors], dtype=np.int64)
    steps = int(lengths.max())
    padded = []
    for t in tensors:
        missing = steps - t.shape[0]
        if missing:
            filler = Tensor(np.full((missing, *t.shape[1:]), padding_value, dtype=t.dtype))
            t = concatenate([t, filler], axis=0)
        padded.append(t)
    return stack(padded, axis=0 if batch_first else 1), lengths


# ---------------------------------------------------------------- truncated BPTT


class Chunk(NamedTuple):
    """One piece of a truncated-BPTT pass: steps start..stop-1, the layer's output for them, the state after."""

    start: int
    stop: int
    output: Tensor
    state: Any


def detach_state(state: Any) -> Any:
    """The same values with the graph cut: a Tensor, or a tuple such as an LSTM's (h, c)."""
    if isinstance(state, tuple | list):
        return tuple(detach_state(s) for s in state)
    return state.detach() if isinstance(state, Tensor) else state


def tbptt_chunks(layer: Module, input: Any, k: int, hx: Any = None) -> Iterator[Chunk]:
    """Walk a long sequence k steps at a time (truncated BPTT); yields one `Chunk` per piece.

    Semantics: the state after chunk j becomes the initial state of chunk j+1,
    with its values kept but its graph cut (`detach`). So gradients flow back
    at most k steps, through the chunk they came from, and never into an
    earlier chunk; the graph alive at any time covers at most k steps, so
    memory depends on k, not on T. The next chunk runs only when the loop asks
    for it, i.e. after the caller's backward() and optimizer step, with the
    updated weights::

        for chunk in tbptt_chunks(rnn, x, k=50):
            o = readout(chunk.output)                      # (stop - start, B, O)
            loss = ((o - y[chunk.start:chunk.stop]) ** 2).mean()
            loss.backward(); opt.step(); opt.zero_grad()

    `layer` is any module called as `layer(x, state) -> (output, state)`
    (RNN, GRU, LSTM). Time is axis 0, or axis 1 for a batched input with
    `layer.batch_first`. The last chunk is shorter when k does not divide T.
    Use lengths-free (equal-length) batches here.
    """
    if k < 1:
        raise ArgumentError(f"tbptt_chunks: k must be at least 1, got {k}")
    # Slice the caller's array or Tensor as is: Tensor(input) would copy all T steps at once.
    x = input if isinstance(input, Tensor) else np.asarray(input)
    time_axis = 1 if getattr(layer, "batch_first", False) and x.ndim == 3 else 0
    steps = x.shape[time_axis]
    state = hx
    for start in range(0, steps, k):
        stop = min(start + k, steps)
        index = (slice(None), slice(start, stop)) if time_axis == 1 else slice(start, stop)
        output, state = layer(x[index], state)
        yield Chunk(start, stop, output, state)
        state = detach_state(state)
