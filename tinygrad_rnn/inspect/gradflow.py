"""gradflow.py — watch gradients vanish and explode through time. Read after nn/recurrent.py and inspect/.

Backprop through an unrolled RNN multiplies one Jacobian per step, so

    dL/dh_t = dL/dh_T · dh_T/dh_t + (direct terms),   dh_T/dh_t = J_T J_{T-1} ... J_{t+1},
    J_s = dh_s/dh_{s-1} = diag(tanh'(a_s)) W_hh          (vanilla RNN, h_s = tanh(a_s))

and the norm of a product of t factors shrinks or grows geometrically: for a
linear RNN (J_s = W_hh) it goes as rho(W_hh)^(T-t), rho the spectral radius.
Nothing here computes that by hand. `gradient_flow` runs the layer and the
ordinary backward pass and only *watches* it:

- ||dL/dh_t|| with `retain_grad()` on each per-step hidden state (the inputs of
  the Stack node that builds the layer's output);
- the per-step terms of each shared weight's gradient, dL/dW = sum_t term_t,
  by subscribing to the engine's backward observers and reading the VJP of each
  op that uses W, grouped by the `step` tag that `engine.scope` put on the op.
  What the layer computes from the weights once, before the loop (the input
  projection x W_ih^T + b for all steps; a W.T, in layers written that way) is a "prelude": a gradient that
  step t sends into it is carried back to the weights by `tg.grad`, which is
  linear in that gradient, so the per-step pieces still add up to `.grad`;
- ||dh_T/dh_t|| exactly, one VJP per coordinate of h_T, all in one backward
  pass: the layer is rerun on H copies of one sequence and copy i is seeded
  with the unit vector e_i, so row i of the captured gradient at h_t is
  e_i^T dh_T/dh_t (batch rows of a recurrent layer never interact).

The report (`GradFlowReport`, `decay_rate`) is in gradflow_report.py;
`health.check_gradients` turns it into a verdict. The experiments behind
`tinygrad-rnn gradflow` (`run_experiment`, `lag_sweep`) and the linear RNN in
which the theory is exact (`LinearRNN`) live in cli/experiments.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..core import engine
from ..core.engine import grad
from ..core.errors import ArgumentError, GradientError, ShapeError, fmt_shape
from ..core.tensor import Tensor, as_tensor
from ..nn.module import Module, Parameter
from ..nn.utils import clip_grad_norm_
from .gradflow_report import GradFlowReport, decay_rate
from .watch import backward_trace

__all__ = ["GradFlowReport", "decay_rate", "gradient_flow", "hidden_states", "jacobian_norms", "spectral_radius"]

# Ops that only re-view one tensor. `hidden_states` looks through them (a permute for batch_first,
# a reshape for an unbatched input) to find the stack of per-step states; inspect.usage uses the same set.
_ALIASES = frozenset({"permute", "reshape", "broadcastto", "cast"})


# ---------------------------------------------------------------- finding h_t on the tape


def hidden_states(output: Tensor) -> list[Tensor]:
    """The per-step hidden states h_1..h_T (each (B, H)) that a recurrent layer stacked into `output`.

    Walks back from `output` through re-viewing ops (a permute for batch_first,
    a reshape for an unbatched input) to the `stack` node; its inputs are the
    live tensors h_t that the next step also read, so their gradients are the
    full dL/dh_t. For a multi-layer network these are the top layer's states.
    With `lengths`, a step after some sequence has finished outputs
    where(alive, h_t, 0), zeros at the padding; the next step reads h_t, the
    state inside it, so that is what is returned for such a step.
    """
    tensor = output
    while tensor._node is not None and tensor._node.name in _ALIASES:
        parents = tensor._node.parents or ()
        if len(parents) != 1 or parents[0] is None:
            break
        tensor = parents[0]
    node = tensor._node
    if node is None or node.name != "stack" or node.parents is None:
        raise GradientError(
            f"hidden_states: the output of shape {fmt_shape(output.shape)} was not made by stacking per-step "
            "states on the tape; pass the first result of an RNN/LSTM/GRU layer called with grad enabled "
            "and parameters that require grad"
        )
    return [_carried_state(p) for p in node.parents if p is not None]


def _carried_state(h: Tensor) -> Tensor:
    """h_t itself when `h` is a padded output where(alive, h_t, 0) recorded at h_t's step; else `h`."""
    node = h._node
    if node is None or node.name != "where" or node.parents is None or len(node.parents) != 2:
        return h
    state, padding = node.parents
    is_zero_constant = isinstance(padding, Tensor) and padding._node is None and not np.any(padding.data)
    same_step = isinstance(state, Tensor) and state._node is not None and state._node.tags == node.tags
    return state if is_zero_constant and same_step else h


# ---------------------------------------------------------------- gradient_flow


def gradient_flow(
    layer: Module,
    x: Any,
    loss_fn: Callable[[Tensor], Tensor] | None = None,
    *,
    h0: Any = None,
    jacobians: bool = True,
    sample: int = 0,
    clip: float | None = None,
    seed: int = 0,
) -> GradFlowReport:
    """Run `layer` on `x`, backpropagate, and report how the gradient flowed through time.

    `layer` is an RNN, LSTM, GRU (any number of layers; h_t is the top layer's)
    or anything called as `layer(x, h0) -> (output, state)` that stacks its
    per-step states into `output` and tags each step with `engine.scope(step=t)`.
    `loss_fn(output) -> scalar Tensor`; by default the probe L = sum_b u_b · h_T[b]
    with fixed random unit vectors u_b (seeded by `seed`), so dL/dh_T has norm
    sqrt(B) and everything before T is pure backprop through time.

    Side effects, as `loss.backward()` would have: every parameter of `layer`
    gets its `.grad` (set afresh, not added to), then clipped with
    `nn.utils.clip_grad_norm_(params, clip)` when `clip` is given.

    Cost: one backward pass, one `grad` call per (step, prelude output) to split
    the terms, and one forward and backward on H copies for the Jacobians. For
    layer k > 0 of a stack, each of those `grad` calls walks the layers below,
    so the split costs O(T^2) there.
    """
    named = dict(layer.named_parameters())
    if not named:
        raise ArgumentError(f"gradient_flow: {type(layer).__name__} has no parameters")
    x_t = as_tensor(x)
    for p in named.values():
        p.grad = None
    output, _ = layer(x_t, h0)
    states = hidden_states(output)
    for h in states:
        h.retain_grad()
    loss = _probe_loss(states[-1], seed) if loss_fn is None else loss_fn(output)
    if not isinstance(loss, Tensor) or loss.size != 1:
        shape = fmt_shape(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise ShapeError(f"gradient_flow: loss_fn must return a single-element Tensor, got {shape}")

    prelude = _find_prelude(loss, named)
    param_ids = {id(p) for p in named.values()}
    frontier: dict[int, Tensor] = {}  # the tensors (parameters or prelude outputs) that step ops consumed
    raw_terms: dict[tuple[int, Any], np.ndarray] = {}

    def add(tensor: Tensor, bucket: Any, g: np.ndarray) -> None:
        frontier[id(tensor)] = tensor
        previous = raw_terms.get((id(tensor), bucket))
        raw_terms[(id(tensor), bucket)] = np.array(g, copy=True) if previous is None else previous + g

    def observe(node: engine.Function, grad_outs: tuple[Tensor, ...], grads_in: tuple[Tensor | None, ...]) -> None:
        if id(node) in prelude or node.parents is None:
            return  # inside the prelude the terms are already mixed; count them where they enter it
        for parent, g in zip(node.parents, grads_in, strict=True):
            if g is None or not isinstance(parent, Tensor):
                continue
            if id(parent) in param_ids or (parent._node is not None and id(parent._node) in prelude):
                add(parent, node.tags.get("step"), g.data)

    if loss._node is not None and id(loss._node) in prelude:
        add(loss, None, np.ones(loss.shape, dtype=loss.dtype))  # a loss made of parameters alone
    with backward_trace() as bt, engine.observe(backward=observe):
        # retain_graph: afterwards each term is carried through the prelude to the parameters
        loss.backward(retain_graph=True)

    step_terms, other_terms = _collect_terms(raw_terms, frontier, prelude, named, len(states))
    grads = {n: np.array(_grad_data(p), copy=True) for n, p in named.items()}
    total_norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))
    coef = 1.0
    if clip is not None:
        clip_grad_norm_(list(named.values()), clip)
        after = {n: np.array(_grad_data(p), copy=True) for n, p in named.items()}
        # Measured, not recomputed from the formula: the factor clipping actually applied.
        coef = float(np.sqrt(sum(float(np.sum(g * g)) for g in after.values())) / total_norm) if total_norm else 1.0
        grads = after
        step_terms = {n: v * coef for n, v in step_terms.items()}
        other_terms = {n: v * coef for n, v in other_terms.items()}

    grad_norms = np.array([_norm(h.grad) for h in states])
    jac = jacobian_norms(layer, x_t.data, h0=h0, sample=sample) if jacobians else None
    rho, sigma = _recurrent_spectrum(named)
    return GradFlowReport(
        loss=float(loss.item()),
        grad_norms=grad_norms,
        jacobian_norms=None if jac is None else jac[0],
        jacobian_fro=None if jac is None else jac[1],
        step_terms=step_terms,
        other_terms=other_terms,
        grads=grads,
        spectral_radius=rho,
        sigma_max=sigma,
        total_norm=total_norm,
        clip_coef=coef,
        trace=bt,
    )


def _probe_loss(h_last: Tensor, seed: int) -> Tensor:
    u = np.random.default_rng(seed).standard_normal(h_last.shape)
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    return (h_last * Tensor(u.astype(h_last.dtype))).sum()


def _norm(g: Any) -> float:
    if g is None:
        return 0.0  # retain_grad set nothing: no gradient reached this step
    data = np.asarray(g)
    with np.errstate(over="ignore"):
        return float(np.linalg.norm(data.ravel()))


def _grad_data(p: Tensor) -> np.ndarray:
    if p.grad is None:
        return np.zeros(p.shape, dtype=p.dtype)
    return np.asarray(p.grad)


def _find_prelude(loss: Tensor, named: Mapping[str, Parameter]) -> dict[int, frozenset[int]]:
    """The prelude: ops recorded outside any time step that compute from the parameters alone.

    Examples: W_hh.T, taken once before the loop, and the input projection
    x W_ih^T + b that RNN/LSTM/GRU compute for all steps at once and `unbind`
    into per-step pieces. The steps consume the prelude's outputs, so a
    parameter's gradient is split by step where those outputs are used.
    Returns {id(node): ids of the parameters it reaches through prelude ops only}.

    An untagged op joins the prelude only if its other inputs depend on none of
    the parameters it reaches: then backprop from a prelude output to those
    parameters cannot leak through a time step. (A loss L(h_T) + sum(W^2) adds
    a W-term at no step; the final add is not in the prelude, and its W-term is
    counted as one use outside the steps.)
    """
    param_ids = {id(p) for p in named.values()}
    depends: dict[int, frozenset[int]] = {}  # node id -> every parameter it depends on, by any path
    prelude: dict[int, frozenset[int]] = {}
    for tensor in engine.topological_order([loss]):  # earliest first: parents are classified before users
        node = tensor._node
        assert node is not None and node.parents is not None
        inside: set[int] = set()
        outside: set[int] = set()
        for parent in node.parents:
            if not isinstance(parent, Tensor):
                continue
            if id(parent) in param_ids:
                inside.add(id(parent))
            elif parent._node is not None:
                through = prelude.get(id(parent._node))
                if through is not None:
                    inside |= through
                else:
                    outside |= depends.get(id(parent._node), frozenset())
        depends[id(node)] = frozenset(inside | outside)
        if inside and "step" not in node.tags and not inside & outside:
            prelude[id(node)] = frozenset(inside)
    return prelude


def _collect_terms(
    raw: Mapping[tuple[int, Any], np.ndarray],
    frontier: Mapping[int, Tensor],
    prelude: Mapping[int, frozenset[int]],
    named: Mapping[str, Parameter],
    steps: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-step terms in each parameter's own shape.

    A term that arrived at a prelude output is carried back to the parameters
    by the ordinary `grad`, one call per (output, step): a VJP is linear in the
    gradient it is given, so the pieces add up to what backward() computed.
    """
    by_id = {id(p): (n, p) for n, p in named.items()}
    step_terms = {n: np.zeros((steps, *p.shape), dtype=p.dtype) for n, p in named.items()}
    other_terms = {n: np.zeros(p.shape, dtype=p.dtype) for n, p in named.items()}
    for (tensor_id, step), term in raw.items():
        tensor = frontier[tensor_id]
        if tensor_id in by_id:
            pieces = [(by_id[tensor_id][0], term)]
        else:
            assert tensor._node is not None
            wanted = [by_id[i] for i in sorted(prelude[id(tensor._node)])]
            mapped = grad(
                tensor, [p for _, p in wanted], grad_outputs=Tensor(term), retain_graph=True, allow_unused=True
            )
            pieces = [(n, g.data) for (n, _), g in zip(wanted, mapped, strict=True) if g is not None]
        for name, piece in pieces:
            if isinstance(step, int) and 0 <= step < steps:
                step_terms[name][step] += piece
            else:
                other_terms[name] += piece
    return step_terms, other_terms


def _recurrent_spectrum(named: Mapping[str, Parameter]) -> tuple[float | None, float | None]:
    w = named.get("weight_hh_l0")
    if w is None or w.ndim != 2:
        return None, None
    sigma = float(np.linalg.norm(w.data, 2))
    if w.shape[0] != w.shape[1]:
        return None, sigma  # gated cells stack several H x H blocks: no single spectral radius
    return spectral_radius(w.data), sigma


def spectral_radius(matrix: np.ndarray) -> float:
    """max |eigenvalue|: the rate at which powers of the matrix grow or shrink (Gelfand's formula)."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(matrix, dtype=np.float64)))))


# ---------------------------------------------------------------- Jacobian products


def jacobian_norms(layer: Module, x: Any, *, h0: Any = None, sample: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(||dh_T/dh_t||_2, ||dh_T/dh_t||_F) for t = 1..T, for batch element `sample` of `x`.

    Exact, with one VJP per coordinate of h_T, run as one backward pass: the
    layer reads H copies of the sequence, copy i's h_T is seeded with e_i, and
    the gradient captured at h_t then holds row i of dh_T/dh_t in batch row i.
    """
    data = np.asarray(x.data if isinstance(x, Tensor) else x)
    batch_first = bool(getattr(layer, "batch_first", False))
    if data.ndim == 3:
        batch, shape = (data.shape[0] if batch_first else data.shape[1]), fmt_shape(data.shape)
        if not 0 <= sample < batch:
            raise ArgumentError(f"jacobian_norms: sample={sample} is not a batch index of an input of shape {shape}")
        one = data[sample] if batch_first else data[:, sample]
    elif data.ndim == 2:
        one = data  # unbatched (T, D)
    else:
        raise ShapeError(f"jacobian_norms: input must be (T, B, D) or unbatched (T, D), got {fmt_shape(data.shape)}")
    size = int(getattr(layer, "hidden_size", 0))
    if size < 1:
        raise ArgumentError(f"jacobian_norms: {type(layer).__name__} has no hidden_size attribute")
    copies = np.repeat(one[None], size, axis=0) if batch_first else np.repeat(one[:, None], size, axis=1)
    state = None if h0 is None else _tile_state(h0, sample, size)
    output, _ = layer(Tensor(copies), state)
    states = hidden_states(output)
    rows = grad(states[-1], states, grad_outputs=Tensor(np.eye(size, dtype=states[-1].dtype)))
    spectral = np.array([np.linalg.norm(r.data, 2) if r is not None else 0.0 for r in rows])
    frobenius = np.array([np.linalg.norm(r.data) if r is not None else 0.0 for r in rows])
    return spectral, frobenius


def _tile_state(h0: Any, sample: int, copies: int) -> Any:
    """The initial state of `sample`, repeated for every copy: (L, B, H) -> (L, copies, H); pairs for an LSTM."""
    if isinstance(h0, tuple | list):
        return tuple(_tile_state(s, sample, copies) for s in h0)
    array = np.asarray(h0.data if isinstance(h0, Tensor) else h0)
    if array.ndim != 3:
        raise ShapeError(f"jacobian_norms: h0 must be (num_layers, B, H), got {fmt_shape(array.shape)}")
    return Tensor(np.repeat(array[:, sample : sample + 1], copies, axis=1))
