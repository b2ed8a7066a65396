"""test_op_completeness.py — every primitive in ops.py has exactly one record in op_table.OPS.

So a new primitive is property-checked the day it is added: until its OpSpec
exists, this test names it. A record must also really exercise the class it
claims, which the recorded tape shows.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_table import OPS, OpSpec

from tinygrad_rnn.checks.testing import arrays
from tinygrad_rnn.core import ops
from tinygrad_rnn.core.engine import Function, topological_order
from tinygrad_rnn.core.tensor import Tensor

PRIMITIVES = sorted(
    (
        cls
        for name, cls in vars(ops).items()
        if inspect.isclass(cls)
        and issubclass(cls, Function)
        and cls.__module__ == ops.__name__
        and not name.startswith("_")
    ),
    key=lambda cls: cls.__name__,
)


def test_ops_defines_primitives() -> None:
    # Guards the discovery above: an empty list would make the next test pass vacuously.
    assert {"Add", "MatMul", "GetItem", "Max"} <= {cls.__name__ for cls in PRIMITIVES}


@pytest.mark.parametrize("primitive", PRIMITIVES, ids=[cls.__name__ for cls in PRIMITIVES])
def test_every_primitive_has_exactly_one_record(primitive: type[Function]) -> None:
    owners = [spec.name for spec in OPS if spec.primitive is primitive]
    assert len(owners) == 1, f"ops.{primitive.__name__} has {len(owners)} OpSpec records in op_table.OPS: {owners}"


@pytest.mark.parametrize("primitive", PRIMITIVES, ids=[cls.__name__ for cls in PRIMITIVES])
def test_every_primitive_has_a_jvp_rule(primitive: type[Function]) -> None:
    # Forward mode (core/forward.py) needs one JVP beside every VJP; test_forward_mode.py checks them.
    assert callable(getattr(primitive, "jvp", None)), f"ops.{primitive.__name__} defines no jvp(ctx, *tangents)"


def test_record_names_are_unique() -> None:
    names = [spec.name for spec in OPS]
    assert len(names) == len(set(names))


def test_records_only_claim_primitives_of_ops() -> None:
    claimed = {spec.primitive for spec in OPS if spec.primitive is not None}
    assert claimed <= set(PRIMITIVES)


OWNERS = [spec for spec in OPS if spec.primitive is not None]


@pytest.mark.parametrize("spec", OWNERS, ids=[spec.name for spec in OWNERS])
@settings(max_examples=3)
@given(data=st.data())
def test_record_records_its_primitive(spec: OpSpec, data: st.DataObject) -> None:
    in_shapes, params = data.draw(spec.draw_cases())
    xs = [Tensor(data.draw(arrays(s, np.float64, (0.5, 2.0))), requires_grad=True) for s in in_shapes]
    out = spec.fn(*xs, **params)
    outs = out if isinstance(out, tuple) else (out,)
    recorded = {type(t.grad_fn).__name__ for t in topological_order(outs)}
    assert spec.primitive is not None and spec.primitive.__name__ in recorded, f"{spec.name} recorded only {recorded}"
