"""op_table.py — one record per op: what it computes, its numpy twin, and how to draw inputs for it.

Read with test_op_properties.py, which runs every property over every record,
and test_op_completeness.py, which fails when a primitive in ops.py has no
record. Adding an op means adding one `OpSpec` here and nothing else.

A record names the primitive it is *the* check for (`primitive`); variants
and composed ops (`pow` with a scalar exponent, `mean`, `var`, `.T`) carry
`primitive=None`. `cases` draws the input shapes together with the keyword
parameters (axis, index, ...) that fit them; `values` says where input values
may lie, and which points (kinks, ties) to keep `min_gap` away from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st

import tinygrad_rnn.core.tensor as tgt
from tinygrad_rnn.checks.testing import broadcastable_shapes, shapes
from tinygrad_rnn.core import ops
from tinygrad_rnn.core.engine import Function
from tinygrad_rnn.core.tensor import Tensor

Shape = tuple[int, ...]
Case = tuple[tuple[Shape, ...], dict[str, Any]]


@dataclass(frozen=True)
class Values:
    """Where one input's values are drawn: [low, high], at least `min_gap` from each point of `away_from`."""

    low: float = -3.0
    high: float = 3.0
    away_from: tuple[float, ...] = ()
    min_gap: float = 1e-3


@dataclass(frozen=True)
class OpSpec:
    """One op under test: `fn(*tensors, **params)` should equal `numpy_ref(*arrays, **params)`."""

    name: str
    fn: Callable[..., Any]
    numpy_ref: Callable[..., Any]
    arity: int
    primitive: type[Function] | None
    cases: st.SearchStrategy[Case] | None = None  # default: `arity` inputs of one shape, or broadcastable
    broadcasts: bool = False
    values: Values | tuple[Values, ...] = field(default_factory=Values)
    unique: bool = False  # keep all input values min_gap apart, also across inputs (ties of max/min)
    atol: float = 1e-5
    rtol: float = 1e-3
    low_precision_output: bool = False  # fn computes in float32 on purpose, so gradcheck warns

    def draw_cases(self) -> st.SearchStrategy[Case]:
        if self.cases is not None:
            return self.cases
        if self.broadcasts and self.arity > 1:
            return broadcastable_shapes(self.arity).map(lambda s: (s, {}))
        return shapes().map(lambda s: ((s,) * self.arity, {}))

    def values_of(self, i: int) -> Values:
        return self.values if isinstance(self.values, Values) else self.values[i]


# ---------------------------------------------------------------- case strategies


def _with_params(
    shape_strategy: st.SearchStrategy[Shape], params: Callable[[Shape], st.SearchStrategy[dict[str, Any]]]
) -> st.SearchStrategy[Case]:
    """One input whose shape decides which parameters fit it."""
    return shape_strategy.flatmap(lambda s: params(s).map(lambda p: ((s,), p)))


@st.composite
def _axes(draw: st.DrawFn, ndim: int) -> Any:
    """None, one axis (maybe negative), or a tuple of distinct axes (maybe empty)."""
    kind = draw(st.sampled_from(["none", "int", "tuple"] if ndim else ["none", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    chosen = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim)) if ndim else []
    return tuple(a - ndim if draw(st.booleans()) else a for a in chosen)


def _reduction(shape: Shape) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"axis": _axes(len(shape)), "keepdims": st.booleans()})


def _single_axis(shape: Shape) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"axis": st.integers(-len(shape), len(shape) - 1)})


REDUCTION_CASES = _with_params(shapes(), _reduction)
SINGLE_AXIS_CASES = _with_params(shapes(min_dims=1), _single_axis)
# Every reduced axis has 2 or more elements, so n - 1 > 0 (the unbiased variance is defined).
UNBIASED_CASES = _with_params(
    shapes(min_dims=1, min_side=2),
    lambda s: st.fixed_dictionaries({"axis": st.none() | st.integers(-len(s), len(s) - 1), "keepdims": st.booleans()}),
)
SINGLE_AXIS_KEEP_CASES = _with_params(
    shapes(min_dims=1),
    lambda s: st.fixed_dictionaries({"axis": st.integers(-len(s), len(s) - 1), "keepdims": st.booleans()}),
)
NORM_CASES = _with_params(
    shapes(),
    lambda s: st.tuples(_reduction(s), st.sampled_from([2, 1, 3, "fro", 1.5])).map(lambda t: {**t[0], "p": t[1]}),
)


@st.composite
def _matmul_cases(draw: st.DrawFn) -> Case:
    """1-D and 2-D operands in every pairing, and stacks of matrices with broadcast batch axes."""
    n, k, p = (draw(st.integers(1, 3), label=name) for name in "nkp")
    kind = draw(st.sampled_from(["vv", "mv", "vm", "mm", "batched", "vector-batched"]))
    if kind in ("batched", "vector-batched"):
        n, k, p = min(n, 2), min(k, 2), min(p, 2)
        b1, b2 = draw(broadcastable_shapes(2, max_dims=2, max_side=2, max_size=4), label="batch")
        x_shape = (k,) if kind == "vector-batched" else (*b1, n, k)
        x_shape, y_shape = x_shape, (*b2, k, p)
    else:
        x_shape, y_shape = {"vv": ((k,), (k,)), "mv": ((n, k), (k,)), "vm": ((k,), (k, p)), "mm": ((n, k), (k, p))}[
            kind
        ]
    # The transpose flags (BLAS gemm's) apply to operands of 2 or more axes: store those transposed.
    flags = {}
    for name, shape in (("transpose_x", x_shape), ("transpose_y", y_shape)):
        flags[name] = len(shape) >= 2 and draw(st.booleans(), label=name)
    x_shape = (*x_shape[:-2], x_shape[-1], x_shape[-2]) if flags["transpose_x"] else x_shape
    y_shape = (*y_shape[:-2], y_shape[-1], y_shape[-2]) if flags["transpose_y"] else y_shape
    return (x_shape, y_shape), flags


def _matmul_ref(x: np.ndarray, y: np.ndarray, transpose_x: bool = False, transpose_y: bool = False) -> np.ndarray:
    return np.matmul(np.swapaxes(x, -1, -2) if transpose_x else x, np.swapaxes(y, -1, -2) if transpose_y else y)


@st.composite
def _matmul_addend_cases(draw: st.DrawFn) -> Case:
    """A matmul case and an addend C broadcast with the product: full, a bias (last axis), size-1 axes,
    0-d, or with a leading batch axis the product does not have."""
    (x_shape, y_shape), flags = draw(_matmul_cases())
    product = _matmul_ref(np.zeros(x_shape), np.zeros(y_shape), **flags).shape
    kept = draw(st.integers(0, len(product)), label="addend axes")
    c_shape = tuple(1 if draw(st.booleans()) else n for n in product[len(product) - kept :])
    if kept == len(product) and draw(st.booleans(), label="extra batch axis"):
        c_shape = (2, *c_shape)
    return (x_shape, y_shape, c_shape), flags


@st.composite
def _basic_index(draw: st.DrawFn, shape: Shape) -> Any:
    """ints (maybe negative), slices with steps 1, 2, -1, None (new axis) and Ellipsis: no element twice."""
    parts: list[Any] = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "full"]))
        if kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            bound = st.none() | st.integers(-n - 1, n + 1)
            parts.append(slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, -1]))))
        else:
            parts.append(slice(None))
    kept = draw(st.integers(0, len(parts)))
    if draw(st.booleans()):  # leading axes implied by an Ellipsis
        parts = [Ellipsis, *parts[len(parts) - kept :]]
    else:
        parts = parts[:kept]
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), None)
    return parts[0] if len(parts) == 1 and draw(st.booleans()) else tuple(parts)


@st.composite
def _array_index(draw: st.DrawFn, shape: Shape) -> Any:
    """Integer arrays (or lists) with repeated indices, alone, 2-D, after a slice, or paired."""
    first = st.integers(-shape[0], shape[0] - 1)
    picks = draw(st.lists(first, min_size=1, max_size=4), label="picks")
    picks = [*picks, picks[0]]  # at least one repeat: its gradient must add up, not overwrite
    kind = draw(st.sampled_from(["array", "list", "2d"] + (["after-slice", "pair"] if len(shape) > 1 else [])))
    if kind == "list":
        return picks
    if kind == "2d":
        return np.array(picks[:2] * 2).reshape(2, 2)
    columns = st.integers(0, shape[1] - 1) if len(shape) > 1 else st.nothing()
    second = draw(st.lists(columns, min_size=len(picks), max_size=len(picks))) if len(shape) > 1 else []
    if kind == "after-slice":
        return (slice(None), np.array(second))
    if kind == "pair":
        return (np.array(picks), np.array(second))
    return np.array(picks)


BASIC_INDEX_CASES = _with_params(shapes(), lambda s: _basic_index(s).map(lambda i: {"index": i}))
ARRAY_INDEX_CASES = _with_params(shapes(min_dims=1), lambda s: _array_index(s).map(lambda i: {"index": i}))


def _scatter_case(case: Case) -> Case:
    """Turn a getitem case around: x has the shape of zeros(shape)[index]."""
    ((shape,), params) = case
    return (np.shape(np.empty(shape)[params["index"]]),), {"shape": shape, "index": params["index"]}


@st.composite
def _stack_cases(draw: st.DrawFn) -> Case:
    count = draw(st.integers(1, 3), label="count")
    shape = draw(shapes(max_size=4), label="shape")
    axis = draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    return (shape,) * count, {"axis": axis}


@st.composite
def _concatenate_cases(draw: st.DrawFn) -> Case:
    count = draw(st.integers(1, 3), label="count")
    shape = draw(shapes(min_dims=1, max_size=4), label="shape")
    axis = draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    lengths = draw(st.lists(st.integers(0, 3), min_size=count, max_size=count), label="lengths")
    at = axis % len(shape)
    return tuple((*shape[:at], n, *shape[at + 1 :]) for n in lengths), {"axis": axis}


@st.composite
def _split_cases(draw: st.DrawFn) -> Case:
    shape = draw(shapes(min_dims=1), label="shape")
    axis = draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    length = shape[axis]
    if draw(st.booleans()):
        sections: Any = draw(st.integers(1, length + 1), label="split size")
    else:
        cuts = sorted(draw(st.lists(st.integers(0, length), max_size=3), label="cuts"))
        sections = [b - a for a, b in zip([0, *cuts], [*cuts, length], strict=True)]
    return (shape,), {"sections": sections, "axis": axis}


@st.composite
def _repeat_cases(draw: st.DrawFn) -> Case:
    shape = draw(shapes(max_size=4), label="shape")
    extra = draw(st.integers(0, 1), label="new leading axes")
    counts = tuple(draw(st.lists(st.integers(0, 2), min_size=len(shape) + extra, max_size=len(shape) + extra)))
    return (shape,), {"repeats": counts}


@st.composite
def _flatten_cases(draw: st.DrawFn) -> Case:
    shape = draw(shapes(min_dims=1), label="shape")
    start = draw(st.integers(0, len(shape) - 1), label="start")
    end = draw(st.integers(start, len(shape) - 1), label="end")
    negative = draw(st.booleans(), label="negative end")
    return (shape,), {"start_dim": start, "end_dim": end - len(shape) if negative else end}


def _flatten_ref(x: np.ndarray, start_dim: int, end_dim: int) -> np.ndarray:
    end = end_dim % x.ndim
    return x.reshape((*x.shape[:start_dim], -1, *x.shape[end + 1 :]))


@st.composite
def _gather_cases(draw: st.DrawFn) -> Case:
    """An integer index with the input's number of axes: any length (repeats included) along `dim`,
    at most the input's length along the others, as PyTorch's gather requires."""
    shape = draw(shapes(min_dims=1), label="shape")
    dim = draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    at = dim % len(shape)
    index_shape = tuple(draw(st.integers(1, 3 if i == at else n)) for i, n in enumerate(shape))
    index = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, shape[at] - 1)), label="index")
    return (shape,), {"dim": dim, "index": index}


def _gather_ref(x: np.ndarray, dim: int, index: np.ndarray) -> np.ndarray:
    """PyTorch's gather: the output has the index's shape (numpy's take_along_axis would broadcast it)."""
    at = dim % x.ndim
    cropped = x[tuple(slice(None) if i == at else slice(0, n) for i, n in enumerate(index.shape))]
    return np.take_along_axis(cropped, index, axis=dim)


def _minus_ones_for_kept(target: Shape, shape: Shape) -> tuple[int, ...]:
    """`target` with -1 wherever expand keeps the input's size (PyTorch's spelling for "unchanged")."""
    lead = len(target) - len(shape)
    return tuple(-1 if i >= lead and n == shape[i - lead] else n for i, n in enumerate(target))


def _reshape_targets(shape: Shape) -> st.SearchStrategy[dict[str, Any]]:
    size = int(np.prod(shape))
    targets = [(size,), (-1,), (1, size), (size, 1), tuple(reversed(shape)), (*shape, 1), (1, -1)]
    if size == 1:
        targets.append(())
    return st.sampled_from(targets).map(lambda t: {"shape": t})


def _broadcast_targets(shape: Shape) -> st.SearchStrategy[dict[str, Any]]:
    lead = st.lists(st.integers(1, 2), max_size=2)
    grown = st.tuples(*(st.integers(1, 3) if n == 1 else st.just(n) for n in shape))
    return st.tuples(lead, grown).map(lambda t: {"shape": (*t[0], *t[1])})


@st.composite
def _where_cases(draw: st.DrawFn) -> Case:
    x_shape, y_shape = draw(broadcastable_shapes(2), label="shapes")
    condition = draw(hnp.arrays(np.bool_, np.broadcast_shapes(x_shape, y_shape)), label="condition")
    return (x_shape, y_shape), {"condition": condition}


# ---------------------------------------------------------------- numpy twins


def _logsumexp(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> Any:
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))  # safe: |x| <= 3 here


def _softmax(x: np.ndarray, axis: int) -> Any:
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _norm(x: np.ndarray, axis: Any, keepdims: bool, p: Any) -> Any:
    p = 2 if p == "fro" else p
    return np.sum(np.abs(x) ** p, axis=axis, keepdims=keepdims) ** (1.0 / p)


def _scatteradd(x: np.ndarray, shape: Shape, index: Any) -> np.ndarray:
    out = np.zeros(shape, dtype=x.dtype)
    if _is_basic(index):
        out[index] = x  # basic indexing reaches each element at most once
    else:
        np.add.at(out, index, x)
    return out


def _is_basic(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, int | slice) or i is None or i is Ellipsis for i in parts)


def _split(x: np.ndarray, sections: Any, axis: int) -> list[np.ndarray]:
    length = x.shape[axis]
    cuts = range(sections, length, sections) if isinstance(sections, int) else np.cumsum(sections)[:-1]
    return np.split(x, list(cuts), axis=axis)


# ---------------------------------------------------------------- the table


def _exponent(e: float) -> dict[str, Any]:
    return {"exponent": e}


POSITIVE = Values(0.1, 4.0)
# x mod y jumps where x / y is an integer. With y in [1, 1.04] and x in [-2.9, 2.9] that is only
# near x = k * 1.02 (k = -2..2, within 0.04 |k|): keep x 0.06 away, so floor(x / y) is locally constant.
DIVIDEND = Values(-2.9, 2.9, away_from=(-2.04, -1.02, 0.0, 1.02, 2.04), min_gap=0.06)
NONZERO = Values(-3.0, 3.0, away_from=(0.0,), min_gap=0.25)

OPS: list[OpSpec] = [
    # unary elementwise
    OpSpec("neg", lambda x: -x, np.negative, 1, ops.Neg),
    OpSpec("exp", Tensor.exp, np.exp, 1, ops.Exp),
    OpSpec("log", Tensor.log, np.log, 1, ops.Log, values=POSITIVE),
    OpSpec("sqrt", Tensor.sqrt, np.sqrt, 1, ops.Sqrt, values=POSITIVE),
    OpSpec("abs", Tensor.abs, np.abs, 1, ops.Abs, values=Values(away_from=(0.0,))),
    OpSpec("tanh", Tensor.tanh, np.tanh, 1, ops.Tanh),
    OpSpec("sigmoid", Tensor.sigmoid, lambda x: 1 / (1 + np.exp(-x)), 1, ops.Sigmoid, values=Values(-5.0, 5.0)),
    OpSpec("relu", Tensor.relu, lambda x: np.maximum(x, 0), 1, ops.Relu, values=Values(away_from=(0.0,))),
    OpSpec(
        "clamp_tensor_bounds",
        lambda x, low, high: x.clamp(low, high),
        lambda x, low, high: np.minimum(np.maximum(x, low), high),
        3,
        None,
        broadcasts=True,
        unique=True,
    ),
    OpSpec(
        "clip",
        lambda x, low, high: x.clip(low, high),
        lambda x, low, high: np.clip(x, low, high),
        1,
        ops.Clip,
        cases=_with_params(
            shapes(),
            lambda s: st.sampled_from([(-1.0, 1.0), (None, 0.5), (-0.5, None), (0.0, 0.0)]).map(
                lambda b: {"low": b[0], "high": b[1]}
            ),
        ),
        values=Values(away_from=(-1.0, -0.5, 0.0, 0.5, 1.0), min_gap=0.01),
    ),
    # binary elementwise, broadcasting
    OpSpec("add", lambda x, y: x + y, np.add, 2, ops.Add, broadcasts=True),
    OpSpec("sub", lambda x, y: x - y, np.subtract, 2, ops.Sub, broadcasts=True),
    OpSpec("mul", lambda x, y: x * y, np.multiply, 2, ops.Mul, broadcasts=True),
    OpSpec("truediv", lambda x, y: x / y, np.true_divide, 2, ops.Div, broadcasts=True, values=(Values(), NONZERO)),
    OpSpec(
        "pow", lambda x, y: x**y, np.power, 2, ops.Pow, broadcasts=True, values=(Values(0.3, 2.5), Values(-2.0, 2.0))
    ),
    OpSpec(
        "pow_scalar_exponent",
        lambda x, exponent: x**exponent,
        lambda x, exponent: np.power(x, exponent),
        1,
        None,
        cases=_with_params(shapes(), lambda s: st.sampled_from([0.0, 1.0, 2.0, 3.0, -1.0, -2.0]).map(_exponent)),
        values=Values(-2.0, 2.0, away_from=(0.0,), min_gap=0.25),
    ),
    OpSpec(
        "remainder",
        lambda x, y: x % y,
        np.remainder,
        2,
        ops.Remainder,
        broadcasts=True,
        values=(DIVIDEND, Values(1.0, 1.04)),
    ),
    OpSpec("maximum", tgt.maximum, np.maximum, 2, ops.Maximum, broadcasts=True, unique=True),
    OpSpec("minimum", tgt.minimum, np.minimum, 2, ops.Minimum, broadcasts=True, unique=True),
    OpSpec(
        "masked_fill",
        lambda x, condition: x.masked_fill(condition, 0.5),
        lambda x, condition: np.where(condition, 0.5, x),
        1,
        None,
        cases=_with_params(shapes(), lambda s: hnp.arrays(np.bool_, s).map(lambda c: {"condition": c})),
    ),
    OpSpec(
        "where",
        lambda x, y, condition: tgt.where(condition, x, y),
        lambda x, y, condition: np.where(condition, x, y),
        2,
        ops.Where,
        cases=_where_cases(),
    ),
    # reductions
    OpSpec("sum", Tensor.sum, np.sum, 1, ops.Sum, cases=REDUCTION_CASES),
    OpSpec("mean", Tensor.mean, np.mean, 1, None, cases=REDUCTION_CASES),
    OpSpec(
        "var",
        lambda x, axis, keepdims: x.var(axis=axis, keepdims=keepdims),  # numpy's spelling: numpy's ddof = 0
        np.var,
        1,
        None,
        cases=REDUCTION_CASES,
    ),
    OpSpec(
        "var_unbiased",
        lambda x, axis, keepdims: x.var(dim=axis, keepdim=keepdims),
        lambda x, axis, keepdims: np.var(x, axis=axis, keepdims=keepdims, ddof=1),
        1,
        None,
        cases=UNBIASED_CASES,
    ),
    OpSpec(
        "std",
        lambda x, axis, keepdims: x.std(dim=axis, keepdim=keepdims),
        lambda x, axis, keepdims: np.std(x, axis=axis, keepdims=keepdims, ddof=1),
        1,
        None,
        cases=UNBIASED_CASES,
        unique=True,  # equal values give std 0, where sqrt has no derivative
    ),
    OpSpec("norm", Tensor.norm, _norm, 1, None, cases=NORM_CASES, values=Values(away_from=(0.0,), min_gap=0.05)),
    OpSpec("max", Tensor.max, np.max, 1, ops.Max, cases=REDUCTION_CASES, unique=True),
    OpSpec("min", Tensor.min, np.min, 1, ops.Min, cases=REDUCTION_CASES, unique=True),
    OpSpec(
        "max_dim",
        lambda x, axis, keepdims: x.max(dim=axis, keepdim=keepdims).values,
        np.max,
        1,
        None,
        cases=SINGLE_AXIS_KEEP_CASES,
        unique=True,
    ),
    OpSpec(
        "min_dim",
        lambda x, axis, keepdims: x.min(axis, keepdims).values,
        np.min,
        1,
        None,
        cases=SINGLE_AXIS_KEEP_CASES,
        unique=True,
    ),
    OpSpec("logsumexp", Tensor.logsumexp, _logsumexp, 1, ops.LogSumExp, cases=REDUCTION_CASES),
    OpSpec("softmax", Tensor.softmax, _softmax, 1, ops.Softmax, cases=SINGLE_AXIS_CASES),
    OpSpec(
        "log_softmax",
        Tensor.log_softmax,
        lambda x, axis: np.log(_softmax(x, axis)),
        1,
        ops.LogSoftmax,
        cases=SINGLE_AXIS_CASES,
    ),
    # movement
    OpSpec(
        "reshape",
        lambda x, shape: x.reshape(shape),
        np.reshape,
        1,
        ops.Reshape,
        cases=_with_params(shapes(), _reshape_targets),
    ),
    OpSpec(
        "permute",
        lambda x, axes: x.permute(*axes),
        np.transpose,
        1,
        ops.Permute,
        cases=_with_params(shapes(), lambda s: st.permutations(range(len(s))).map(lambda p: {"axes": tuple(p)})),
    ),
    OpSpec(
        "transpose",
        lambda x, axis0, axis1: x.transpose(axis0, axis1),
        lambda x, axis0, axis1: np.swapaxes(x, axis0, axis1),
        1,
        None,
        cases=_with_params(
            shapes(min_dims=1),
            lambda s: st.fixed_dictionaries(
                {"axis0": st.integers(-len(s), len(s) - 1), "axis1": st.integers(-len(s), len(s) - 1)}
            ),
        ),
    ),
    OpSpec("T", lambda x: x.T, lambda x: x.T, 1, None),
    OpSpec(
        "mT",
        lambda x: x.mT,
        lambda x: np.swapaxes(x, -1, -2),
        1,
        None,
        cases=shapes(min_dims=2).map(lambda s: ((s,), {})),
    ),
    OpSpec("flatten", Tensor.flatten, _flatten_ref, 1, None, cases=_flatten_cases()),
    OpSpec(
        "repeat",
        lambda x, repeats: x.repeat(*repeats),
        lambda x, repeats: np.tile(x, repeats),
        1,
        None,
        cases=_repeat_cases(),
    ),
    OpSpec(
        "expand",
        lambda x, shape: x.expand(*_minus_ones_for_kept(shape, x.shape)),
        np.broadcast_to,
        1,
        None,
        cases=_with_params(shapes(), _broadcast_targets),
    ),
    OpSpec(
        "broadcast_to",
        lambda x, shape: x.broadcast_to(shape),
        np.broadcast_to,
        1,
        ops.BroadcastTo,
        cases=_with_params(shapes(), _broadcast_targets),
    ),
    OpSpec("getitem", lambda x, index: x[index], lambda x, index: x[index], 1, ops.GetItem, cases=BASIC_INDEX_CASES),
    OpSpec(
        "gather",
        lambda x, dim, index: x.gather(dim, index),
        _gather_ref,
        1,
        None,
        cases=_gather_cases(),
    ),
    OpSpec("getitem_array", lambda x, index: x[index], lambda x, index: x[index], 1, None, cases=ARRAY_INDEX_CASES),
    OpSpec(
        "scatteradd",
        lambda x, shape, index: ops.ScatterAdd.apply(x, shape=shape, index=index),
        _scatteradd,
        1,
        ops.ScatterAdd,
        cases=(BASIC_INDEX_CASES | ARRAY_INDEX_CASES).map(_scatter_case),
    ),
    OpSpec(
        "stack",
        lambda *xs, axis: tgt.stack(xs, axis=axis),
        lambda *xs, axis: np.stack(xs, axis=axis),
        3,
        ops.Stack,
        cases=_stack_cases(),
    ),
    OpSpec(
        "concatenate",
        lambda *xs, axis: tgt.concatenate(xs, axis=axis),
        lambda *xs, axis: np.concatenate(xs, axis=axis),
        3,
        ops.Concatenate,
        cases=_concatenate_cases(),
    ),
    OpSpec(
        "split",
        lambda x, sections, axis: tgt.split(x, sections, axis=axis),
        _split,
        1,
        ops.Split,
        cases=_split_cases(),
    ),
    OpSpec(
        "unbind",
        lambda x, axis: x.unbind(axis),
        lambda x, axis: [np.take(x, i, axis=axis) for i in range(x.shape[axis])],
        1,
        ops.Unbind,
        cases=SINGLE_AXIS_CASES,
    ),
    # matmul
    OpSpec(
        "matmul",
        lambda x, y, **flags: ops.MatMul.apply(x, y, **flags) if any(flags.values()) else x @ y,
        _matmul_ref,
        2,
        ops.MatMul,
        cases=_matmul_cases(),
    ),
    OpSpec(
        "matmul with addend",
        lambda x, y, c, **flags: ops.MatMul.apply(x, y, c, **flags),
        lambda x, y, c, **flags: _matmul_ref(x, y, **flags) + c,
        3,
        None,
        cases=_matmul_addend_cases(),
    ),
    # type
    OpSpec(
        "cast",
        lambda x: x.astype(np.float32),
        lambda x: x.astype(np.float32),
        1,
        ops.Cast,
        low_precision_output=True,
    ),
]

OPS_BY_NAME = {spec.name: spec for spec in OPS}
