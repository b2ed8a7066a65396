"""nn/sequence.py — helpers for sequences: padded batches and truncated BPTT. Read after recurrent.py.

`pad_sequence` makes a padded batch (and its lengths) for a layer's `lengths=`;
`tbptt_chunks` walks a long sequence k steps at a time, cutting the graph
between chunks with `detach_state`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..core.errors import ArgumentError, ShapeError, fmt_shape
from ..core.tensor import Tensor, concatenate, stack
from .module import Module

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
    tensors = [s if isinstance(s, Tensor) else Tensor(s) for s in sequences]
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
    if getattr(layer, "bidirectional", False):
        raise ArgumentError(
            f"tbptt_chunks: {layer!r} is bidirectional; its backward direction reads each step from the end of "
            "the whole sequence, which no chunk has. Run it over the whole sequence, or chunk a unidirectional layer"
        )
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
