"""nn/recurrent.py — RNN, LSTM and GRU: a Python for-loop over time. Read after kinds.py and cells.py.

There is no backward pass in this file. A layer applies its cell once per time
step, and every step is ordinary Tensor operations recorded on the tape; the
unrolled graph is a deep feed-forward graph whose weights appear once per step.
Backpropagation through time (BPTT) is then the engine's ordinary backward
walk over that graph, and dL/dW_hh comes out as a sum over steps because the
engine adds up the gradients of a tensor used several times (docs/rnn.md
derives it; tinygrad_rnn/checks/reference.py does it by hand).

`RNNBase(kind, ...)` runs any cell kind (kinds.py) over a sequence; RNN, LSTM
and GRU only choose the kind. Each step is recorded inside
`engine.scope(module="rnn.l0", step=t)` (the layer's class name and index,
"rnn.l0_reverse" for the backward direction), so study tools can fold the
graph by time step.

A bidirectional layer runs a second set of weights (PyTorch's `_reverse`
names) over the sequence from its end: the same step function, visiting
t = T-1, ..., 0. With `lengths`, a sequence's backward direction starts at its
own last step: until then its row keeps the initial state, exactly as if the
sequence had been reversed within its length. The two directions' outputs are
concatenated, (T, B, 2H), and h_n stacks (layer, direction) pairs,
(num_layers * 2, B, H), PyTorch's layouts.

The input projection x_t W_ih^T + b is hoisted out of the loop: one
(T, B, D) @ (D, G) matmul for all steps, taken apart by `unbind` (one node
whose VJP is a single stack; slicing step t out with getitem would scatter
into a zero array of the full (T, B, G) shape at every step, O(T^2) work).
Every x W^T is `functional.linear`: one matmul node with its transpose flag,
so no transpose node appears in the graph. For RNN and LSTM, which only ever
use b_ih + b_hh, both biases go into the hoisted projection. A step is then
one matmul, one add and the nonlinearity. The cells (RNNCell, ...) run the
same step functions on one x_t (cells.py).

With `checkpoint_every=k` the loop runs k steps at a time inside `tg.checkpoint`,
after the hoisted projection: the pieces' graphs are dropped and rebuilt during
backward, with the plain layer's gradients to the last bit (through_time.py).

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

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.checkpoint import checkpoint
from ..core.engine import scope
from ..core.errors import ArgumentError, DTypeError, ShapeError, fmt_shape
from ..core.tensor import Tensor, concatenate, stack, where
from .cells import (
    GRUCell,
    LSTMCell,
    RNNCell,
    RNNCellBase,
    add_parameters,
    check_sizes,
    check_state,
    rnn_kind,
    split_state,
    weights,
)
from .functional import dropout as apply_dropout
from .init import RNG, default_uniform_, make_rng
from .kinds import GRU_KIND, LSTM_KIND, CellKind, State, Weights, cell_kind
from .module import ON_CPU, Module, Parameter, as_input, reject_unsupported
from .sequence import Chunk, detach_state, pad_sequence, tbptt_chunks  # their home until they moved to sequence.py

__all__ = [
    "GRU", "LSTM", "RNN", "Chunk", "GRUCell", "LSTMCell", "RNNBase", "RNNCell", "RNNCellBase",
    "detach_state", "pad_sequence", "tbptt_chunks",
]  # fmt: skip


_PYTORCH_ONLY = {**ON_CPU, "proj_size": (0,)}  # keywords torch.nn.RNN/LSTM/GRU take, and what we accept


class RNNBase(Module):
    """A multi-layer, optionally bidirectional network of any cell kind: PyTorch's names, the checks, the loop."""

    def __init__(
        self, kind: CellKind | str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
        batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, dtype: Any = np.float64,
        rng: RNG = None, checkpoint_every: int | None = None,
    ) -> None:  # fmt: skip
        self.kind = cell_kind(kind)
        owner = self.kind.layer_name
        check_sizes(owner, input_size, hidden_size)
        if checkpoint_every is not None and (type(checkpoint_every) is not int or checkpoint_every < 1):
            raise ArgumentError(
                f"{owner}: checkpoint_every must be a positive number of steps, got {checkpoint_every!r}"
            )
        if num_layers < 1:
            raise ArgumentError(f"{owner}: num_layers must be at least 1, got {num_layers}")
        if isinstance(dropout, bool) or not 0.0 <= dropout <= 1.0:
            raise ArgumentError(f"{owner}: dropout must be a probability in [0, 1], got {dropout!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.checkpoint_every = checkpoint_every
        self.dtype = np.dtype(dtype)
        for k in range(num_layers):
            # Layer k > 0 reads layer k-1's hidden states (both directions'), so its input size is H or 2H.
            fan_in = input_size if k == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(k):
                add_parameters(self, self.kind, fan_in, hidden_size, bias, dtype, suffix)
        generator = make_rng(rng)
        self.reset_parameters(generator)
        # Dropout masks come from the layer's generator if it was given one, else from make_rng(None).
        self._mask_rng = generator if rng is not None else None

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, k: int) -> list[str]:
        return [f"_l{k}", f"_l{k}_reverse"][: self.num_directions]

    def reset_parameters(self, rng: RNG = None) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
        default_uniform_(self.parameters(), self.hidden_size, rng=make_rng(rng))

    if TYPE_CHECKING:
        # The per-layer parameters (weight_ih_l0, ...) are set with setattr; this tells a type checker
        # that `rnn.weight_hh_l0` is a Parameter. It does not exist at run time.
        def __getattr__(self, name: str) -> Parameter: ...

    def forward(self, input: Any, hx: Any = None, lengths: Any = None, *, h0: Any = None) -> tuple[Tensor, Any]:
        """(output, h_n), or (output, (h_n, c_n, ...)) for a kind with several state tensors.

        The initial state is `hx` (PyTorch's name) or, as a keyword, `h0`."""
        output, final = self._run(input, _one_of(self, h0, hx), lengths)
        return output, final[0] if len(final) == 1 else final

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
        """One state per (layer, direction) from hx ((num_layers * directions, B, H) tensors), or zeros."""
        size, count = self.hidden_size, self.num_layers * self.num_directions
        names = self.kind.state_names
        if hx is None:
            zeros = Tensor(np.zeros((batch, size), dtype=dtype))
            return [(zeros,) * len(names) for _ in range(count)]
        owner = repr(self)
        rows = "num_layers * 2" if self.bidirectional else "num_layers"
        expected = (count, batch, size) if batched else (count, size)
        meaning = f"({rows}, batch, hidden_size)" if batched else f"({rows}, hidden_size) for an unbatched input"
        arguments = tuple(f"{name}0" for name in names)
        given = split_state(owner, self.kind.layer_name, hx, arguments)
        checked = [
            check_state(owner, name, value, expected, meaning, dtype).reshape(count, batch, size)
            for name, value in zip(arguments, given, strict=True)
        ]
        return [tuple(s[i] for s in checked) for i in range(count)]

    # ------------------------------------------------------------ the loop

    def _run(self, input: Any, hx: Any, lengths: Any) -> tuple[Tensor, State]:
        """Shared forward: returns (output, final state stacked over layers and directions)."""
        x, batched = self._check_input(input)
        steps, batch = x.shape[0], x.shape[1]
        dtype = self.weight_hh_l0.dtype
        lengths_array = self._check_lengths(lengths, steps, batch, batched)
        states = self._initial_states(hx, batch, batched, dtype)
        name = self.kind.layer_name.lower()
        if lengths_array is not None:
            # Padding is replaced by 0 before the projection, so its values (even inf or nan)
            # never reach a matmul, forward or backward.
            alive_steps = np.arange(steps)[:, None, None] < lengths_array[None, :, None]
            x = where(alive_steps, x, 0.0)
        layer_input = x
        finals: list[State] = []
        for k in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(k)):
                module = f"{name}.{suffix[1:]}"  # "gru.l0", "gru.l0_reverse"
                w = weights(self, suffix)
                with scope(module=module):
                    inputs = self.kind.project(layer_input, w).unbind(0)
                output, state = self._scan(inputs, states[len(finals)], w, lengths_array, module, direction == 1)
                outputs.append(output)
                finals.append(state)
            # the next layer reads this layer's hidden states, both directions side by side
            layer_input = outputs[0] if len(outputs) == 1 else concatenate(outputs, axis=-1)
            if self.dropout and self.training and k < self.num_layers - 1:
                layer_input = apply_dropout(layer_input, self.dropout, rng=make_rng(self._mask_rng))
        output = layer_input
        final = tuple(stack([f[i] for f in finals], axis=0) for i in range(len(finals[0])))
        if not batched:
            output = output.reshape(steps, output.shape[-1])
            final = tuple(f.reshape(len(finals), self.hidden_size) for f in final)
        elif self.batch_first:
            output = output.permute(1, 0, 2)
        return output, final

    def _scan(
        self, inputs: tuple[Tensor, ...], state: State, w: Weights, lengths: np.ndarray | None, module: str,
        reverse: bool,
    ) -> tuple[Tensor, State]:  # fmt: skip
        """The step over t = 0..T-1 (or T-1..0): the outputs (T, B, H) in time order, and the last state.

        With `checkpoint_every=k` the visits go k at a time through `checkpoint` (module docstring)."""
        steps = len(inputs)
        visits = list(reversed(range(steps))) if reverse else list(range(steps))
        outputs: list[Tensor] = [inputs[0]] * steps  # placeholders, each replaced below
        every, size = self.checkpoint_every or steps, len(state)
        for start in range(0, steps, every):
            times = visits[start : start + every]

            def run(*tensors: Tensor, times: list[int] = times) -> tuple[Tensor, ...]:
                """The steps `times` from a state and their inputs: their outputs, then the state after them."""
                outs, new = self._steps(times, tensors[size:], tensors[:size], w, lengths, module)
                return (*outs, *new)

            if self.checkpoint_every is None:
                result = run(*state, *(inputs[t] for t in times))
            else:
                result = checkpoint(run, *state, *(inputs[t] for t in times))
            for t, output in zip(times, result, strict=False):
                outputs[t] = output
            state = tuple(result[len(times) :])
        return stack(outputs, axis=0), state

    def _steps(
        self, times: list[int], inputs: tuple[Tensor, ...], state: State, w: Weights, lengths: np.ndarray | None,
        module: str,
    ) -> tuple[list[Tensor], State]:  # fmt: skip
        """The step at each of `times` in turn (inputs[i] is step times[i]'s projected input)."""
        # Mask only where some sequence is outside its length: until then every row is live,
        # and the graph is the same as without lengths.
        shortest = 0 if lengths is None else int(lengths.min())
        outputs = []
        for t, xw in zip(times, inputs, strict=True):
            with scope(module=module, step=t):
                new = self.kind.step(xw, state, w)
                if lengths is None or t < shortest:
                    state = new
                    outputs.append(new[0])
                    continue
                # A finished row (forward), or one whose sequence has not started yet (reverse),
                # keeps its state and outputs 0. `where` selects rather than multiplying by a 0/1
                # mask, so the discarded rows get exactly zero gradient.
                alive = (lengths > t)[:, None]
                state = tuple(where(alive, n, s) for n, s in zip(new, state, strict=True))
                outputs.append(where(alive, state[0], 0.0))
        return outputs, state

    def extra_repr(self) -> str:
        parts = [f"{self.input_size}, {self.hidden_size}"]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        if not self.bias:
            parts.append("bias=False")
        if self.batch_first:
            parts.append("batch_first=True")
        if self.dropout:
            parts.append(f"dropout={self.dropout}")
        if self.bidirectional:
            parts.append("bidirectional=True")
        if self.checkpoint_every is not None:
            parts.append(f"checkpoint_every={self.checkpoint_every}")
        if self.kind.setting:
            parts.append(self.kind.setting)
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"{self.kind.layer_name}({self.extra_repr()})"


def _one_of(owner: RNNBase, h0: Any, hx: Any) -> Any:
    """The initial state, passed as h0 (our name) or hx (PyTorch's keyword)."""
    if h0 is not None and hx is not None:
        raise ArgumentError(f"{owner!r}: pass the initial state once, as h0 or as hx (PyTorch's name), not both")
    return hx if h0 is None else h0


_LAYER_DOC = """
    Shapes (PyTorch's): x is (T, B, D), or (B, T, D) with batch_first=True, or
    unbatched (T, D). output is (T, B, H) (or (B, T, H), or (T, H)): the top
    layer's hidden state at every step. h_n is (num_layers, B, H) (or
    (num_layers, H)): each layer's state after the last step. Parameters are
    weight_ih_l{k} (G*H, D or H), weight_hh_l{k} (G*H, H), bias_ih_l{k} and
    bias_hh_l{k} (G*H,), all ~ U(-1/sqrt(H), 1/sqrt(H)).

    `bidirectional=True` adds weight_ih_l{k}_reverse etc., run from the end of
    each sequence; output is then (T, B, 2H) (forward, backward halves) and h_n
    is (num_layers * 2, B, H), row 2k + d for layer k, direction d. `dropout=p`
    zeroes each output of every layer but the last with probability p, in
    training mode only (`layer.eval()` turns it off). `checkpoint_every=k`
    (not in PyTorch) keeps the state every k steps instead of every step's
    graph, and recomputes k steps at a time in backward: checkpointed BPTT,
    the same outputs and gradients bit for bit, for one more forward of time.

    Variable lengths: with `lengths` (one int per sequence, 1 <= length <= T)
    the input is a padded batch (see `pad_sequence`). Step t updates only the
    sequences with length > t; the rest keep their state, so h_n holds each
    sequence's state at its own last step, and output is 0 at padded positions.
    No gradient flows from padded positions: results are the same as running
    each sequence alone.
"""


class RNN(RNNBase):
    """A multi-layer Elman RNN: for each layer and step, h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).

    `rnn(x, h0=None, lengths=None)` returns (output, h_n); `hx=` (PyTorch's name) works too. G = 1.
    """

    __doc__ = (__doc__ or "") + _LAYER_DOC

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh", bias: bool = True,
        batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, dtype: Any = np.float64,
        rng: RNG = None, checkpoint_every: int | None = None, **unsupported: Any,
    ) -> None:  # fmt: skip
        reject_unsupported("RNN", unsupported, _PYTORCH_ONLY)
        kind = rnn_kind("RNN", nonlinearity)
        super().__init__(
            kind, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype, rng,
            checkpoint_every,
        )  # fmt: skip
        self.nonlinearity = nonlinearity

    def forward(self, input: Any, hx: Any = None, lengths: Any = None, *, h0: Any = None) -> tuple[Tensor, Tensor]:
        output, (h_n,) = self._run(input, _one_of(self, h0, hx), lengths)
        return output, h_n


class LSTM(RNNBase):
    """A multi-layer LSTM; each step is `LSTMCell`'s equations (gate order i, f, g, o).

    `lstm(x, hx=None, lengths=None)` with hx = (h0, c0) returns (output, (h_n, c_n)). G = 4.
    """

    __doc__ = (__doc__ or "") + _LAYER_DOC

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, batch_first: bool = False,
        dropout: float = 0.0, bidirectional: bool = False, dtype: Any = np.float64, rng: RNG = None,
        checkpoint_every: int | None = None, **unsupported: Any,
    ) -> None:  # fmt: skip
        reject_unsupported("LSTM", unsupported, _PYTORCH_ONLY)
        super().__init__(
            LSTM_KIND, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype, rng,
            checkpoint_every,
        )  # fmt: skip

    def forward(
        self, input: Any, hx: Any = None, lengths: Any = None, *, h0: Any = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        output, (h_n, c_n) = self._run(input, _one_of(self, h0, hx), lengths)
        return output, (h_n, c_n)


class GRU(RNNBase):
    """A multi-layer GRU; each step is `GRUCell`'s equations (gate order r, z, n).

    `gru(x, h0=None, lengths=None)` returns (output, h_n); `hx=` (PyTorch's name) works too. G = 3.
    """

    __doc__ = (__doc__ or "") + _LAYER_DOC

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, batch_first: bool = False,
        dropout: float = 0.0, bidirectional: bool = False, dtype: Any = np.float64, rng: RNG = None,
        checkpoint_every: int | None = None, **unsupported: Any,
    ) -> None:  # fmt: skip
        reject_unsupported("GRU", unsupported, _PYTORCH_ONLY)
        super().__init__(
            GRU_KIND, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype, rng,
            checkpoint_every,
        )  # fmt: skip

    def forward(self, input: Any, hx: Any = None, lengths: Any = None, *, h0: Any = None) -> tuple[Tensor, Tensor]:
        output, (h_n,) = self._run(input, _one_of(self, h0, hx), lengths)
        return output, h_n
