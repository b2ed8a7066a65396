"""nn/cells.py — RNNCell, LSTMCell, GRUCell: one step of a cell kind. Read after kinds.py.

`RNNCellBase(kind, ...)` holds a kind's parameters (PyTorch's names and shapes,
from the kind's description) and runs its step once: it checks the shapes,
makes a missing state zeros, projects the input and calls the kind's step
function. The three public cells only choose the kind. The helpers at the top
are shared with the layers in recurrent.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.engine import scope
from ..core.errors import ArgumentError, ShapeError, fmt_shape
from ..core.tensor import Tensor
from .init import RNG, default_uniform_, make_rng
from .kinds import GRU_KIND, LSTM_KIND, RNN_RELU, RNN_TANH, CellKind, State, Weights, cell_kind
from .module import ON_CPU, Module, Parameter, as_input, reject_unsupported

# ---------------------------------------------------------------- shared by cells and layers


def check_sizes(owner: str, input_size: int, hidden_size: int) -> None:
    if input_size < 1 or hidden_size < 1:
        raise ArgumentError(f"{owner}: input_size and hidden_size must be positive, got {input_size}, {hidden_size}")


def rnn_kind(owner: str, nonlinearity: str) -> CellKind:
    """RNN and RNNCell run one of two kinds, chosen by `nonlinearity` (PyTorch's modes RNN_TANH, RNN_RELU)."""
    kinds = {"tanh": RNN_TANH, "relu": RNN_RELU}
    if nonlinearity not in kinds:
        raise ArgumentError(f"{owner}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return kinds[nonlinearity]


def add_parameters(
    module: Module, kind: CellKind, input_size: int, hidden_size: int, bias: bool, dtype: Any, suffix: str
) -> None:
    """Set weight_ih{suffix}, weight_hh{suffix} and, with bias, bias_ih{suffix} and bias_hh{suffix}."""
    for name, shape in kind.parameter_shapes(input_size, hidden_size).items():
        is_bias = name.startswith("bias")
        setattr(module, name + suffix, Parameter(np.zeros(shape), dtype=dtype) if bias or not is_bias else None)


def weights(module: Module, suffix: str) -> Weights:
    return Weights(*(getattr(module, name + suffix) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))


def check_state(
    owner: object, name: str, value: Any, expected: tuple[int, ...], meaning: str, dtype: np.dtype[Any]
) -> Tensor:
    tensor = as_input(owner, name, value, dtype)
    if tensor.shape != expected:
        raise ShapeError(
            f"{owner}: {name} has shape {fmt_shape(tensor.shape)}, expected {fmt_shape(expected)} {meaning}"
        )
    return tensor


def split_state(owner: object, public: str, hx: Any, names: tuple[str, ...]) -> list[Any]:
    """hx as a list with one entry per state tensor: [h0] or, for an LSTM, [h0, c0]."""
    if len(names) == 1:
        is_sequence = isinstance(hx, tuple) or (
            isinstance(hx, list) and any(isinstance(v, Tensor | np.ndarray) for v in hx)
        )
        if is_sequence:
            raise ShapeError(
                f"{owner}: {public} takes one state tensor {names[0]}, not a {type(hx).__name__} of {len(hx)} "
                "(only the LSTM's state is a pair (h, c))"
            )
        return [hx]
    what = "a pair" if len(names) == 2 else f"a tuple of {len(names)}"
    if not isinstance(hx, tuple | list) or len(hx) != len(names):
        raise ShapeError(f"{owner}: hx must be {what} ({', '.join(names)}), got {type(hx).__name__}")
    return list(hx)


# ---------------------------------------------------------------- one step


class RNNCellBase(Module):
    """One step of any cell kind (kinds.py): `cell(x, hx=None)`, x (B, D) or unbatched (D,).

    Returns the new state, h' (a Tensor) or, for a kind with several state
    tensors such as the LSTM, the tuple (h', c'); each of the input's batchedness.
    """

    def __init__(
        self, kind: CellKind | str, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = np.float64,
        rng: RNG = None,
    ) -> None:  # fmt: skip
        self.kind = cell_kind(kind)
        check_sizes(self.kind.cell_name, input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        add_parameters(self, self.kind, input_size, hidden_size, bias, dtype, "")
        self.reset_parameters(rng)

    if TYPE_CHECKING:
        # The parameters are set with setattr; this tells a type checker that `cell.weight_hh` is a
        # Parameter. It does not exist at run time.
        def __getattr__(self, name: str) -> Parameter: ...

    def reset_parameters(self, rng: RNG = None) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
        default_uniform_(self.parameters(), self.hidden_size, rng=make_rng(rng))

    def forward(self, input: Any, hx: Any = None) -> Any:
        state = self._run(input, hx)
        return state[0] if len(state) == 1 else state

    def _run(self, input: Any, hx: Any) -> State:
        """Check shapes, make a missing state zeros, run one step; unbatched (D,) in gives (H,) out."""
        owner = self  # its repr names it in errors; made only when one is raised (~1.8 us a repr, timeit)
        kind, size, dtype = self.kind, self.hidden_size, self.weight_hh.dtype
        x = as_input(owner, "input", input, dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ShapeError(
                f"{owner}: input has shape {fmt_shape(x.shape)}, expected (batch, input_size={self.input_size}) "
                f"or unbatched (input_size={self.input_size},)"
            )
        batched = x.ndim == 2
        if not batched:
            x = x.reshape(1, self.input_size)
        batch = x.shape[0]
        if hx is None:
            state = tuple(Tensor(np.zeros((batch, size), dtype=dtype)) for _ in kind.state_names)
        else:
            names = kind.state_names if len(kind.state_names) > 1 else ("hx",)
            expected = (batch, size) if batched else (size,)
            meaning = "(batch, hidden_size)" if batched else "(hidden_size,) for an unbatched input"
            given = split_state(owner, kind.cell_name, hx, names)
            checked = [check_state(owner, n, v, expected, meaning, dtype) for n, v in zip(names, given, strict=True)]
            # an unbatched state becomes one row; a batched one is used as it is (no reshape node per step)
            state = tuple(checked) if batched else tuple(s.reshape(batch, size) for s in checked)
        with scope(module=kind.cell_name.lower()):
            w = weights(self, "")
            new = kind.step(kind.project(x, w), state, w)
        return new if batched else tuple(s.reshape(size) for s in new)

    def extra_repr(self) -> str:
        extra = "" if self.bias_ih is not None else ", bias=False"
        setting = f", {self.kind.setting}" if self.kind.setting else ""
        return f"{self.input_size}, {self.hidden_size}{extra}{setting}"

    def __repr__(self) -> str:
        return f"{self.kind.cell_name}({self.extra_repr()})"


class RNNCell(RNNCellBase):
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

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
        dtype: Any = np.float64, rng: RNG = None, **unsupported: Any,
    ) -> None:  # fmt: skip
        reject_unsupported("RNNCell", unsupported, ON_CPU)
        super().__init__(rnn_kind("RNNCell", nonlinearity), input_size, hidden_size, bias, dtype, rng)
        self.nonlinearity = nonlinearity

    def forward(self, input: Any, hx: Any = None) -> Tensor:
        return self._run(input, hx)[0]


class LSTMCell(RNNCellBase):
    """One LSTM step, PyTorch's equations and gate order (i, f, g, o):

        i = σ(W_ii x + b_ii + W_hi h + b_hi),   f = σ(W_if x + b_if + W_hf h + b_hf)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg), o = σ(W_io x + b_io + W_ho h + b_ho)
        c' = f * c + i * g,   h' = o * tanh(c')

    weight_ih is (4H, D) = [W_ii; W_if; W_ig; W_io] stacked by rows, weight_hh is (4H, H).
    `cell(x, hx=None)` with hx = (h, c) returns (h', c').
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = np.float64, rng: RNG = None,
        **unsupported: Any,
    ) -> None:  # fmt: skip
        reject_unsupported("LSTMCell", unsupported, ON_CPU)
        super().__init__(LSTM_KIND, input_size, hidden_size, bias, dtype, rng)

    def forward(self, input: Any, hx: Any = None) -> tuple[Tensor, Tensor]:
        h, c = self._run(input, hx)
        return h, c


class GRUCell(RNNCellBase):
    """One GRU step, PyTorch's equations and gate order (r, z, n):

        r = σ(W_ir x + b_ir + W_hr h + b_hr),   z = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    weight_ih is (3H, D) = [W_ir; W_iz; W_in], weight_hh is (3H, H).
    `cell(x, hx=None)` returns h'.
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = np.float64, rng: RNG = None,
        **unsupported: Any,
    ) -> None:  # fmt: skip
        reject_unsupported("GRUCell", unsupported, ON_CPU)
        super().__init__(GRU_KIND, input_size, hidden_size, bias, dtype, rng)

    def forward(self, input: Any, hx: Any = None) -> Tensor:
        return self._run(input, hx)[0]
