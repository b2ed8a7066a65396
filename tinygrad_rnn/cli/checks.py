"""cli/checks.py — `tinygrad-rnn gradcheck`: every primitive and every recurrent layer against finite differences.

`PRIMITIVE_CHECKS` has one record per primitive in ops.py (a test holds it to
that), with the shapes and the input domain to draw from: `Domain` keeps inputs
away from the places where a function is not differentiable (0 for abs and
relu, x <= 0 for log) instead of shifting the function. `recurrent_checks()`
builds one record per recurrent cell and layer, differentiating with respect to
the input, the initial state and every parameter.

Each record runs `tinygrad_rnn.checks.gradcheck.gradcheck` (the verdict, including its
zero-grad_out and backward-twice invariants) and reports the worst entry of
`numerical_jacobian` against `analytical_jacobian`. The relative error is taken
over entries with |numeric| > atol, where it means something.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checks.gradcheck import analytical_jacobian, gradcheck, numerical_jacobian
from ..core import ops
from ..core.errors import GradcheckError, TinygradRNNError
from ..core.tensor import Tensor, concatenate, maximum, minimum, stack, where
from ..nn.cells import RNNCellBase
from ..nn.kinds import CELL_KINDS
from ..nn.module import Module
from ..nn.recurrent import RNNBase

ATOL, RTOL = 1e-5, 1e-3


@dataclass(frozen=True)
class Domain:
    """Values drawn uniformly with |x| in [low, high]; `signed` gives each a random sign."""

    low: float = -2.0
    high: float = 2.0
    signed: bool = False

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        values = rng.uniform(self.low, self.high, size=shape)
        return values * rng.choice([-1.0, 1.0], size=shape) if self.signed else values


ANY = Domain()
POSITIVE = Domain(0.2, 2.0)
AWAY_FROM_ZERO = Domain(0.2, 2.0, signed=True)


@dataclass(frozen=True)
class Check:
    """One gradient check: `fn` applied to fresh random inputs of `shapes` drawn from `domains`."""

    name: str
    op: type | None  # the primitive it covers (None for composed layers)
    fn: Callable[..., Any]
    shapes: tuple[tuple[int, ...], ...]
    domains: tuple[Domain, ...] = (ANY,)
    describe: str = ""

    def inputs(self, rng: np.random.Generator) -> list[Tensor]:
        domains = self.domains * len(self.shapes) if len(self.domains) == 1 else self.domains
        return [Tensor(d.draw(rng, s), requires_grad=True) for d, s in zip(domains, self.shapes, strict=True)]

    def shape_text(self) -> str:
        return self.describe or ", ".join(str(s) for s in self.shapes)


_MASK = np.array([[True, False, True, False], [False, True, True, False], [True, True, False, False]])
_REPEATS = np.array([0, 2, 2, 1])  # an index that selects row 2 twice: its VJP must add, not overwrite

PRIMITIVE_CHECKS: tuple[Check, ...] = (
    # unary elementwise
    Check("neg", ops.Neg, lambda x: -x, ((3, 4),)),
    Check("exp", ops.Exp, lambda x: x.exp(), ((3, 4),)),
    Check("log", ops.Log, lambda x: x.log(), ((3, 4),), (POSITIVE,)),
    Check("sqrt", ops.Sqrt, lambda x: x.sqrt(), ((3, 4),), (POSITIVE,)),
    Check("abs", ops.Abs, lambda x: x.abs(), ((3, 4),), (AWAY_FROM_ZERO,)),
    Check("tanh", ops.Tanh, lambda x: x.tanh(), ((3, 4),)),
    Check("sigmoid", ops.Sigmoid, lambda x: x.sigmoid(), ((3, 4),)),
    Check("relu", ops.Relu, lambda x: x.relu(), ((3, 4),), (AWAY_FROM_ZERO,)),
    Check("clip", ops.Clip, lambda x: x.clip(-1.0, 1.0), ((3, 4),), (Domain(0.2, 0.8, signed=True),)),
    # binary elementwise, with broadcasting (the engine sums the gradient back to each shape)
    Check("add", ops.Add, lambda x, y: x + y, ((3, 4), (4,))),
    Check("sub", ops.Sub, lambda x, y: x - y, ((3, 4), (3, 1))),
    Check("mul", ops.Mul, lambda x, y: x * y, ((3, 4), (1, 4))),
    Check("div", ops.Div, lambda x, y: x / y, ((3, 4), (4,)), (ANY, AWAY_FROM_ZERO)),
    Check("pow", ops.Pow, lambda x, y: x**y, ((3, 4), (3, 4)), (POSITIVE, ANY)),
    # x / y stays inside (-1, 0) or (0, 1), away from the integers where x mod y jumps
    Check("remainder", ops.Remainder, lambda x, y: x % y, ((3, 4), (4,)), (Domain(0.2, 0.8, True), Domain(1.0, 1.04))),
    Check("maximum", ops.Maximum, lambda x, y: maximum(x, y), ((3, 4), (3, 4))),
    Check("minimum", ops.Minimum, lambda x, y: minimum(x, y), ((3, 4), (3, 4))),
    Check("where", ops.Where, lambda x, y: where(_MASK, x, y), ((3, 4), (3, 4))),
    # reductions
    Check("sum", ops.Sum, lambda x: x.sum(axis=1), ((3, 4),)),
    Check("max", ops.Max, lambda x: x.max(axis=0), ((3, 4),)),
    Check("min", ops.Min, lambda x: x.min(axis=1, keepdims=True), ((3, 4),)),
    Check("logsumexp", ops.LogSumExp, lambda x: x.logsumexp(axis=-1), ((3, 4),)),
    Check("softmax", ops.Softmax, lambda x: x.softmax(axis=-1), ((3, 4),)),
    Check("log_softmax", ops.LogSoftmax, lambda x: x.log_softmax(axis=-1), ((3, 4),)),
    # movement
    Check("reshape", ops.Reshape, lambda x: x.reshape(2, 6), ((3, 4),)),
    Check("permute", ops.Permute, lambda x: x.permute(2, 0, 1), ((2, 3, 4),)),
    Check("broadcast_to", ops.BroadcastTo, lambda x: x.broadcast_to(2, 3, 4), ((3, 1),)),
    Check("getitem", ops.GetItem, lambda x: x[_REPEATS, 1:3], ((3, 4),)),
    Check("scatter_add", ops.ScatterAdd, lambda x: ops.ScatterAdd.apply(x, shape=(3, 4), index=_REPEATS), ((4, 4),)),
    Check("stack", ops.Stack, lambda x, y: stack([x, y], axis=1), ((3, 4), (3, 4))),
    Check("concatenate", ops.Concatenate, lambda x, y: concatenate([x, y], axis=0), ((2, 4), (3, 4))),
    Check("split", ops.Split, lambda x: x.split([1, 3], axis=1), ((3, 4),)),  # one node, several outputs
    Check("unbind", ops.Unbind, lambda x: x.unbind(axis=1), ((3, 4),)),
    # matmul
    Check("matmul", ops.MatMul, lambda x, y: x @ y, ((3, 4), (4, 2))),
    Check("matmul (batched)", ops.MatMul, lambda x, y: x @ y, ((2, 3, 4), (4, 2))),
    Check("matmul (vector)", ops.MatMul, lambda x, y: x @ y, ((4,), (4, 2))),
    Check(
        "matmul (x W^T + b)",
        ops.MatMul,
        lambda x, w, b: ops.MatMul.apply(x, w, b, transpose_y=True),
        ((3, 4), (2, 4), (2,)),
    ),
    # type: a float64 -> float64 Cast still records the node and runs its VJP
    Check("cast", ops.Cast, lambda x: ops.Cast.apply(x, dtype=np.dtype(np.float64)), ((3, 4),)),
)


# ---------------------------------------------------------------- recurrent cells and layers


@contextmanager
def _parameters_bound(module: Module, names: Sequence[str], values: Sequence[Tensor]) -> Iterator[None]:
    """Run the module with `values` in place of its parameters (gradcheck passes fresh copies each call)."""
    saved = {name: getattr(module, name) for name in names}
    try:
        for name, value in zip(names, values, strict=True):
            setattr(module, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def _flat_outputs(result: Any) -> tuple[Tensor, ...]:
    """(output, h_n) or (output, (h_n, c_n)) or h or (h, c) -> a flat tuple of Tensors."""
    if isinstance(result, Tensor):
        return (result,)
    return tuple(t for item in result for t in _flat_outputs(item))


def _module_check(
    name: str, module: Module, state_shapes: tuple[tuple[int, ...], ...], x_shape: tuple[int, ...]
) -> Check:
    names = [n for n, _ in module.named_parameters()]
    shapes = tuple(p.shape for p in module.parameters())
    n_states = len(state_shapes)

    def fn(x: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        states, params = rest[:n_states], rest[n_states:]
        hx: Any = None if not states else states[0] if n_states == 1 else tuple(states)
        with _parameters_bound(module, names, params):
            return _flat_outputs(module(x, hx))

    state_text = "".join(f", {label} {s}" for label, s in zip(("h0", "c0"), state_shapes, strict=False))
    describe = f"x {x_shape}{state_text}, {len(names)} parameters"
    return Check(name, None, fn, (x_shape, *state_shapes, *shapes), describe=describe)


def recurrent_checks() -> tuple[Check, ...]:
    """Every registered cell kind (nn/kinds.py): its cell on a (B, D) input, and a two-layer layer
    unrolled over T = 3 steps, sequence-first (T, B, D). Named by the public classes."""
    batch, size, hidden, steps, layers = 2, 3, 2, 3, 2
    cells, stacks = [], []
    for seed, kind in enumerate(CELL_KINDS.values()):
        setting = f"({kind.setting})" if kind.setting else ""
        count = len(kind.state_names)
        cell = RNNCellBase(kind, size, hidden, rng=2 * seed + 1)
        cells.append(_module_check(kind.cell_name + setting, cell, ((batch, hidden),) * count, (batch, size)))
        layer = RNNBase(kind, size, hidden, num_layers=layers, rng=2 * seed + 2)
        layer_states = ((layers, batch, hidden),) * count
        stacks.append(_module_check(kind.layer_name + setting, layer, layer_states, (steps, batch, size)))
    return (*cells, *stacks)


# ---------------------------------------------------------------- running and printing


@dataclass(frozen=True)
class Result:
    name: str
    shapes: str
    max_abs: float
    max_rel: float
    passed: bool
    message: str


def run_check(check: Check, rng: np.random.Generator) -> Result:
    inputs = check.inputs(rng)
    try:
        numeric = numerical_jacobian(check.fn, inputs)
        analytic = analytical_jacobian(check.fn, inputs)
        max_abs, max_rel = 0.0, 0.0
        for n_rows, a_rows in zip(numeric, analytic, strict=True):
            for n, a in zip(n_rows, a_rows, strict=True):
                diff = np.abs(a - n)
                max_abs = max(max_abs, float(np.max(diff, initial=0.0)))
                big = np.abs(n) > ATOL
                if np.any(big):
                    max_rel = max(max_rel, float(np.max(diff[big] / np.abs(n[big]))))
        gradcheck(check.fn, inputs, atol=ATOL, rtol=RTOL)
    except (GradcheckError, TinygradRNNError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Result(check.name, check.shape_text(), max_abs, max_rel, False, first_line)
    return Result(check.name, check.shape_text(), max_abs, max_rel, True, "")


def add_parser(subparsers: Any) -> None:
    from .common import add_seed_option

    parser = subparsers.add_parser(
        "gradcheck",
        help="check every primitive's and recurrent layer's gradient against finite differences",
        description=(
            "Compare the gradient of every primitive and every recurrent cell and layer, computed by backward(), "
            "with central finite differences on random float64 inputs. Prints one row per check and exits with "
            "status 1 if any fails. Checks your installation without pytest."
        ),
    )
    add_seed_option(parser, "seed for the random inputs")
    parser.add_argument("--only", metavar="NAME", action="append", help="run only this check (may repeat)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .common import CLIError, say

    checks = (*PRIMITIVE_CHECKS, *recurrent_checks())
    if args.only:
        unknown = sorted(set(args.only) - {c.name for c in checks})
        if unknown:
            known = ", ".join(c.name for c in checks)
            raise CLIError(f"--only: no check named {', '.join(unknown)}; the checks are: {known}")
        checks = tuple(c for c in checks if c.name in args.only)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    name_width = max(len(c.name) for c in checks) + 2
    shape_width = max(len(c.shape_text()) for c in checks) + 2
    say(f"{'op':{name_width}}{'shapes':{shape_width}}{'max abs err':>12}{'max rel err':>13}  result")
    results = []
    for check in checks:
        result = run_check(check, rng)
        results.append(result)
        verdict = "pass" if result.passed else "FAIL"
        errors = f"{result.max_abs:12.2e}{result.max_rel:13.2e}"
        say(f"{result.name:{name_width}}{result.shapes:{shape_width}}{errors}  {verdict}")
    failed = [r for r in results if not r.passed]
    for r in failed:
        say(f"{r.name}: {r.message}")
    seconds = time.perf_counter() - started
    say(
        f"{len(results) - len(failed)} passed, {len(failed)} failed "
        f"(atol {ATOL:g}, rtol {RTOL:g}, float64 central differences; {seconds:.1f} s)"
    )
    return 1 if failed else 0
