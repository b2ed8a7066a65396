"""nn/through_time.py — two more ways through time: checkpointed BPTT and RTRL. Read after recurrent.py.

BPTT (a layer's forward, then the engine's backward) keeps every step's
activations: memory O(T). Two alternatives, both exact, both built from the
engine and forward mode with no derivative written for any cell:

- `checkpointed(layer, x, every=k)`: run the layer's time loop k steps at a
  time, each piece inside `tg.checkpoint`, so only the state between pieces is
  kept and each piece is recomputed during backward (for RNN, LSTM and GRU this
  is their `checkpoint_every=k` option). Memory O(T/k + k) activations, about
  one more forward pass of time. The backward pass walks each recomputed piece
  as if it had been kept, so the gradient is BPTT's to the last bit.
- `rtrl(cell, x, loss_fn)`: real-time recurrent learning (Williams and Zipser,
  1989). Carry the influence matrix M_t = dh_t/dθ forward, step by step, with
  forward mode; dL/dθ = sum_t dℓ_t/dθ is complete when the sequence ends.
  Memory does not grow with T; each step costs one JVP with P directions
  (P = number of parameters), O(H^2 P) = O(H^4) for an RNN.

docs/two-modes.md compares the three (and truncated BPTT) on one RNN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.checkpoint import checkpoint
from ..core.errors import ArgumentError, ShapeError, fmt_shape
from ..core.forward import push_tangents
from ..core.tensor import Tensor, concatenate
from .module import Module
from .recurrent import RNNBase


def checkpointed(
    layer: Module,
    input: Any,
    hx: Any = None,
    every: int = 1,
    loss_fn: Callable[[int, Tensor], Tensor] | None = None,
) -> tuple[Tensor, Any]:
    """layer(input, hx), with the graph kept only every `every` steps: checkpointed BPTT.

    For RNN, LSTM and GRU (any `RNNBase`) this is the layer run with
    `checkpoint_every=every`: its time loop goes `every` steps at a time
    through `tg.checkpoint`, after the one hoisted input projection, so the
    output and the gradients are the plain layer's, bit for bit. k ≈ sqrt(T)
    keeps O(sqrt(T)) of the step activations (the projection and the output
    are O(T) either way).

    >>> import tinygrad_rnn as tg
    >>> rnn = tg.nn.RNN(2, 3, rng=0)
    >>> x = tg.Tensor(np.random.default_rng(0).normal(size=(6, 1, 2)), requires_grad=True)
    >>> output, h_n = checkpointed(rnn, x, every=2)
    >>> output.shape, h_n.shape
    ((6, 1, 3), (1, 1, 3))
    >>> {t.grad_fn.name for t in output.grad_fn.parents}      # the steps' outputs: 3 checkpoints' outputs
    {'checkpoint'}
    >>> kept, plain = (tg.grad(out.sum(), [x, *rnn.parameters()]) for out in (output, rnn(x)[0]))
    >>> all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(kept, plain))
    True

    Any other layer, or a `loss_fn`, goes through the layer's public call
    instead: `layer(x_piece, state) -> (output, state)` on `every` steps at a
    time, each call inside `tg.checkpoint`, the outputs joined along time (axis
    0, or 1 for a batched input with `layer.batch_first`). Each piece then
    projects its own input, so the values equal BPTT's only up to rounding (and
    bit for bit those of BPTT over the same pieces). With
    `loss_fn(start, output_piece) -> loss`, each piece's loss is computed inside
    its checkpoint (and recomputed with it), and the result is (sum of the
    pieces' losses, final state): then only the states between pieces are kept,
    not even the O(T) output.
    """
    if every < 1:
        raise ArgumentError(f"checkpointed: every must be at least 1, got {every}")
    if isinstance(layer, RNNBase) and loss_fn is None:
        kept, layer.checkpoint_every = layer.checkpoint_every, every
        try:
            return layer(input, hx)
        finally:
            layer.checkpoint_every = kept
    x = input if isinstance(input, Tensor) else np.asarray(input)
    time_axis = 1 if getattr(layer, "batch_first", False) and x.ndim == 3 else 0
    steps = x.shape[time_axis]
    state = hx
    results = []
    for start in range(0, steps, every):
        index = (slice(None), slice(start, start + every)) if time_axis == 1 else slice(start, start + every)

        def piece(x_piece: Any, *state: Tensor, start: int = start) -> tuple[Tensor, Any]:
            output, new_state = layer(x_piece, (state if len(state) > 1 else state[0]) if state else None)
            return (output if loss_fn is None else loss_fn(start, output)), new_state

        # The state goes in as separate tensors, so that each gets its gradient.
        result, state = checkpoint(piece, x[index], *(() if state is None else _flat(state)))
        results.append(result)
    if loss_fn is not None:
        total = results[0]
        for loss in results[1:]:
            total = total + loss
        return total, state
    return concatenate(results, axis=time_axis), state


def _flat(state: Any) -> tuple[Tensor, ...]:
    """A state as a flat tuple: (h,) or an LSTM's (h, c)."""
    return tuple(state) if isinstance(state, tuple | list) else (state,)


def rtrl(
    cell: Module, input: Any, loss_fn: Callable[[int, Tensor], Tensor], hx: Any = None
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """(L, dL/dθ) for L = sum_t loss_fn(t, h_t), by forward mode through time (RTRL).

    `cell` is called as `cell(x_t, state) -> state` (RNNCell, GRUCell: state is h;
    LSTMCell: (h, c)); h_t is the state's first tensor. `input` is (T, B, D) or
    (T, D). θ is `cell.parameters()`, plus whatever else loss_fn reads that
    requires grad is held fixed (pass a readout inside the cell's module to
    train it too). The gradients come back in `cell.parameters()` order.

    Each step records one cell step and loss, pushes the influence
    M_{t-1} = ds_{t-1}/dθ (one direction per parameter element) through it,

        M_t = ∂s_t/∂s_{t-1} M_{t-1} + ∂s_t/∂θ,     dℓ_t/dθ = ∂ℓ_t/∂s_t M_t + ∂ℓ_t/∂θ,

    and drops the step's tape: memory O(P · |s|), whatever T is.
    """
    params = list(cell.parameters())
    sizes = [p.size for p in params]
    count = sum(sizes)
    if count == 0:
        raise ArgumentError(f"rtrl: {type(cell).__name__} has no parameters to differentiate")
    x = input.data if isinstance(input, Tensor) else np.asarray(input)
    if x.ndim < 2:
        raise ShapeError(f"rtrl: input has shape {fmt_shape(x.shape)}; expected (T, B, input_size) or (T, input_size)")
    # The parameters' own directions: direction j moves parameter element j (one row of the identity).
    eye = np.eye(count, dtype=params[0].dtype)
    starts = np.cumsum([0, *sizes])
    own = [eye[:, s : s + n].reshape(count, *p.shape) for s, n, p in zip(starts, sizes, params, strict=False)]
    state = None if hx is None else tuple(s if isinstance(s, Tensor) else Tensor(s) for s in _flat(hx))
    influence: list[np.ndarray] | None = None  # M_{t-1}: one (count, *s.shape) array per state tensor
    total_loss = 0.0
    total_grad = np.zeros(count, dtype=params[0].dtype)
    for t in range(x.shape[0]):
        previous = None if state is None else [Tensor._make(s.data, None).requires_grad_() for s in state]
        given = None if previous is None else previous[0] if len(previous) == 1 else tuple(previous)
        new = cell(x[t], given)
        new_state = new if isinstance(new, tuple) else (new,)
        loss = loss_fn(t, new_state[0])
        # M_0 = 0 (the initial state does not depend on θ): the first step pushes the parameters' directions only.
        inputs = params + (previous if previous is not None and influence is not None else [])
        tangents = own + (influence or [])
        pushed = push_tangents([*new_state, loss], inputs, tangents)
        influence = [p.data for p in pushed[:-1]]
        total_grad += pushed[-1].data.reshape(count)
        total_loss += float(loss.data)
        state = tuple(Tensor._make(s.data, None) for s in new_state)  # values kept, this step's tape dropped
    grads = tuple(
        Tensor._make(total_grad[s : s + n].reshape(p.shape).copy(), None)
        for s, n, p in zip(starts, sizes, params, strict=False)
    )
    return Tensor(np.asarray(total_loss, dtype=params[0].dtype)), grads
