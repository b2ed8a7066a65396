"""reference.py — backpropagation through time by hand, in plain numpy. An oracle, and a contrast.

Read after nn/recurrent.py. This file imports nothing from tinygrad_rnn: it is
the vanilla tanh RNN with a linear readout at every step and a mean squared
error, differentiated on paper and written out, in the style of Karpathy's
min-char-rnn. The tests check that the tape (nn.RNN + nn.Linear + backward())
gives the same gradients to 1e-12; the benchmarks time it against the tape.

The model, for a batch of B sequences padded to T steps (m_t[b] = 1 while
step t is inside sequence b, i.e. t < lengths[b], else 0):

    a_t  = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh     pre-activation  (B, H)
    h~_t = tanh(a_t)                                     candidate state
    h_t  = m_t h~_t + (1 - m_t) h_{t-1}                  a finished sequence keeps its state
    o_t  = h_t W_out^T + b_out                           readout         (B, O)
    L    = (1/N) sum_{t,b} m_t[b] |o_t[b] - y_t[b]|^2,   N = O * sum_{t,b} m_t[b]

(In the textbook's notation W_hx = W_ih, b_h = b_ih + b_hh, W_oh = W_out, b_o = b_out.)
L is PyTorch's mse_loss(reduction='mean') over the positions inside the sequences.

The backward pass, from the chain rule, latest step first. Write dz for dL/dz.
h_t reaches L twice: through o_t, and through h_{t+1} (and everything after),
so its gradient is the sum of the two paths:

    do_t     = (2/N) m_t (o_t - y_t)
    dh_t     = do_t W_out + dh_t^next          dh_t^next = the part that came back from step t+1
    dh~_t    = m_t dh_t
    da_t     = dh~_t * (1 - h~_t^2)            tanh' = 1 - tanh^2
    dh_t-1^next = da_t W_hh + (1 - m_t) dh_t   a finished sequence passes its gradient straight back

and the parameters, used at every step, collect one term per step:

    dW_out = sum_t do_t^T h_t      db_out = sum_t sum_b do_t
    dW_hh  = sum_t da_t^T h_{t-1}  dW_ih  = sum_t da_t^T x_t
    db_hh  = db_ih = sum_t sum_b da_t
    dx_t   = da_t W_ih             dh0    = dh_{-1}^next
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


def _setup(x: Array, h0: Array | None, lengths: Any, hidden: int) -> tuple[Array, Array]:
    """The initial state (zeros if None) and the (T, B, 1) mask m_t[b] = [t < lengths[b]]."""
    steps, batch, dtype = x.shape[0], x.shape[1], x.dtype  # float32 stays float32 (the benchmarks use both)
    h_init = np.zeros((batch, hidden), dtype=dtype) if h0 is None else np.asarray(h0, dtype=dtype)
    if lengths is None:
        mask = np.ones((steps, batch, 1), dtype=dtype)
    else:
        mask = (np.arange(steps)[:, None] < np.asarray(lengths)[None, :]).astype(dtype)[..., None]
    return h_init, mask


def rnn_forward_backward(
    x: Array,
    targets: Array,
    weight_ih: Array,
    weight_hh: Array,
    bias_ih: Array,
    bias_hh: Array,
    weight_out: Array,
    bias_out: Array,
    h0: Array | None = None,
    lengths: Any = None,
) -> tuple[float, dict[str, Array], Array]:
    """Loss, gradients and hidden states of the masked tanh RNN above, one step at a time.

    x is (T, B, D), targets (T, B, O), h0 (B, H) or None for zeros, lengths
    (B,) ints or None for all T. Weights are laid out as in PyTorch: weight_ih
    (H, D), weight_hh (H, H), weight_out (O, H).

    Returns (loss, grads, hs). grads has one entry per argument (weight_ih,
    weight_hh, bias_ih, bias_hh, weight_out, bias_out, x, h0) and also
    `weight_hh_per_step`, (T, H, H): entry t is da_t^T h_{t-1}, the gradient
    with respect to the copy of W_hh used at step t; they sum to dW_hh. hs is
    (T + 1, B, H): hs[0] = h0, hs[t + 1] = h_t.
    """
    steps = x.shape[0]
    h_init, mask = _setup(x, h0, lengths, weight_hh.shape[0])
    count = mask.sum() * targets.shape[-1]  # N

    # Forward, keeping what backward needs: every h_t and h~_t.
    hs = [h_init]
    cands, outs = [], []
    for t in range(steps):
        a = x[t] @ weight_ih.T + bias_ih + hs[-1] @ weight_hh.T + bias_hh
        cand = np.tanh(a)
        hs.append(mask[t] * cand + (1.0 - mask[t]) * hs[-1])
        cands.append(cand)
        outs.append(hs[-1] @ weight_out.T + bias_out)
    loss = float(np.sum(mask * (np.stack(outs) - targets) ** 2) / count)

    # Backward, latest step first.
    grads = {name: np.zeros_like(w) for name, w in [("weight_ih", weight_ih), ("weight_hh", weight_hh),
                                                    ("bias_ih", bias_ih), ("bias_hh", bias_hh),
                                                    ("weight_out", weight_out), ("bias_out", bias_out)]}  # fmt: skip
    grads["x"] = np.zeros_like(x)
    grads["weight_hh_per_step"] = np.zeros((steps, *weight_hh.shape), dtype=x.dtype)
    dh_next = np.zeros_like(h_init)
    for t in reversed(range(steps)):
        do = (2.0 / count) * mask[t] * (outs[t] - targets[t])
        grads["weight_out"] += do.T @ hs[t + 1]
        grads["bias_out"] += do.sum(axis=0)
        dh = do @ weight_out + dh_next  # two paths into h_t: the readout, and step t+1
        da = mask[t] * dh * (1.0 - cands[t] ** 2)
        grads["weight_hh_per_step"][t] = da.T @ hs[t]  # hs[t] is h_{t-1}
        grads["weight_ih"] += da.T @ x[t]
        grads["bias_ih"] += da.sum(axis=0)
        grads["x"][t] = da @ weight_ih
        # (1 - m_t) dh: a finished sequence passes its gradient back unchanged. With this loss it
        # is always 0 (nothing after a sequence's end reaches L); kept so the derivation is general.
        dh_next = da @ weight_hh + (1.0 - mask[t]) * dh
    grads["weight_hh"] = grads["weight_hh_per_step"].sum(axis=0)  # parameter sharing: a sum over steps
    grads["bias_hh"] = grads["bias_ih"].copy()  # b_ih and b_hh enter a_t the same way
    grads["h0"] = dh_next
    return loss, grads, np.stack(hs)


def rnn_forward_backward_hoisted(
    x: Array,
    targets: Array,
    weight_ih: Array,
    weight_hh: Array,
    bias_ih: Array,
    bias_hh: Array,
    weight_out: Array,
    bias_out: Array,
    h0: Array | None = None,
    lengths: Any = None,
) -> tuple[float, dict[str, Array], Array]:
    """The same function, with everything that does not depend on h_{t-1} done for all steps at once.

    x_t W_ih^T + b_ih for every t is one (T*B, D) @ (D, H) matmul before the
    loop; the readout, the loss, and the gradients of W_ih, b_ih, W_out, b_out
    and x are single matmuls or sums over all steps after it. Only the
    recurrence h_{t-1} -> h_t stays a loop, both ways. Same results as
    `rnn_forward_backward` up to rounding; `weight_hh_per_step` is omitted.
    """
    steps, batch, inputs = x.shape
    hidden = weight_hh.shape[0]
    h_init, mask = _setup(x, h0, lengths, hidden)
    count = mask.sum() * targets.shape[-1]

    projected = (x.reshape(steps * batch, inputs) @ weight_ih.T + bias_ih).reshape(steps, batch, hidden)
    hs = np.empty((steps + 1, batch, hidden), dtype=x.dtype)
    cands = np.empty((steps, batch, hidden), dtype=x.dtype)
    hs[0] = h_init
    for t in range(steps):
        cands[t] = np.tanh(projected[t] + hs[t] @ weight_hh.T + bias_hh)
        hs[t + 1] = mask[t] * cands[t] + (1.0 - mask[t]) * hs[t]
    outs = hs[1:] @ weight_out.T + bias_out
    loss = float(np.sum(mask * (outs - targets) ** 2) / count)

    do = (2.0 / count) * mask * (outs - targets)  # (T, B, O)
    dh_out = do @ weight_out  # the readout's share of every dh_t, (T, B, H)
    das = np.empty_like(cands)
    dh_next = np.zeros_like(h_init)
    for t in reversed(range(steps)):
        dh = dh_out[t] + dh_next
        das[t] = mask[t] * dh * (1.0 - cands[t] ** 2)
        dh_next = das[t] @ weight_hh + (1.0 - mask[t]) * dh
    flat_da = das.reshape(steps * batch, hidden)
    grads = {
        "weight_ih": flat_da.T @ x.reshape(steps * batch, inputs),
        "weight_hh": flat_da.T @ hs[:-1].reshape(steps * batch, hidden),
        "bias_ih": flat_da.sum(axis=0),
        "bias_hh": flat_da.sum(axis=0),
        "weight_out": do.reshape(steps * batch, -1).T @ hs[1:].reshape(steps * batch, hidden),
        "bias_out": do.sum(axis=(0, 1)),
        "x": das @ weight_ih,
        "h0": dh_next,
    }
    return loss, grads, hs
