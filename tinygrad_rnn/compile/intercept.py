"""intercept.py — what `tg.compile` watches while a function records, outside the engine's own hooks.

The engine reports each primitive and each backward step to the `Recorder`
(record.py). Some things a function can do make no primitive: read a value
into Python (`.item()`), compare tensors, write in place, make a Tensor from
an array, write `.grad`, draw random numbers. `recording` swaps the Tensor
methods that do them for the length of the recording, so that each either
becomes an instruction or is refused by name; on the way out it checks that
no random numbers were drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import factories
from ..core import forward as forward_mode
from ..core.function import Function, _Tracing
from ..core.tensor import Tensor
from .record import CompileError, Recorder

# Reading values out of the program into Python would let them steer control flow that a replay cannot see.
_READS = ("item", "numpy", "tolist", "__float__", "__int__", "__bool__")
# Tensor methods that make a value outside Function.apply (they record nothing eagerly: comparisons,
# argmax, all/any, integer casts, floor division). While recording, each call on a traced tensor
# becomes an instruction that calls the same method again on the replay's arrays.
# In-place writes (`x[i] = v`, `x += y`, zero_, fill_) rebind `.data` to an array made in Python.
_WRITES = ("_update", "_write")
_UNRECORDED = (
    "__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__",
    "all", "any", "argmax", "argmin", "astype",
    "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__",
)  # fmt: skip


class recording:
    """Install `recorder` and swap the Tensor methods it must watch, for the length of a `with` block."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.saved: dict[str, Any] = {}

    def __enter__(self) -> None:
        rec = self.recorder
        if _Tracing.tracer is not None:
            raise CompileError(f"tg.compile({rec.name}): a compiled function cannot call another while it records")
        self.generator = factories.default_generator()
        self.state = self.generator.bit_generator.state
        self.legacy = np.random.get_state(legacy=False)
        watched = (*_READS, *_UNRECORDED, *_WRITES, "_accumulate_grad", "_make", "__init__")
        originals = {name: getattr(Tensor, name) for name in watched}
        self.saved = originals
        make = originals["_make"].__func__
        init = originals["__init__"]
        accumulate = originals["_accumulate_grad"]

        def watched_read(name: str) -> Any:
            original = originals[name]

            def read(self: Tensor, *args: Any) -> Any:
                if rec.traced(self.data):
                    rec.refuse_read(name.strip("_"))
                return original(self, *args)

            return read

        for name in _READS:
            setattr(Tensor, name, watched_read(name))

        def watched_method(name: str) -> Any:
            original = originals[name]

            def method(self: Tensor, *args: Any, **kwargs: Any) -> Any:
                out = original(self, *args, **kwargs)
                operands = [self, *args]
                tensors = [isinstance(a, Tensor) for a in operands]
                traced = any(rec.traced(a.data) for a, t in zip(operands, tensors, strict=True) if t)
                if isinstance(out, Tensor) and traced and not rec.traced(out.data):
                    ins = tuple(rec.slot(a.data, a) for a, t in zip(operands, tensors, strict=True) if t)

                    def run(*arrays: Any) -> tuple[Any]:
                        given = iter(arrays)
                        again = [
                            Tensor._make(next(given), None) if t else a for a, t in zip(operands, tensors, strict=True)
                        ]
                        return (original(*again, **kwargs).data,)

                    rec._emit(name.strip("_"), run, ins, [rec._bind(out.data)])
                return out

            return method

        for name in _UNRECORDED:
            setattr(Tensor, name, watched_method(name))

        def watched_write(name: str) -> Any:
            original = originals[name]

            def write(self: Tensor, op: str, *args: Any) -> Any:
                value = args[-1]
                if rec.traced(self.data) or (isinstance(value, Tensor) and rec.traced(value.data)):
                    rec.refuse(f"an in-place write ({op}) into or of a computed tensor")
                return original(self, op, *args)

            return write

        for name in _WRITES:
            setattr(Tensor, name, watched_write(name))

        def made(cls: type[Tensor], data: Any, node: Any) -> Tensor:
            out = make(cls, data, node)
            rec.created.add(id(out))
            rec.alive.append(out)
            return out

        def initialised(self: Tensor, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
            init(self, data, requires_grad, dtype)
            rec.created.add(id(self))
            rec.alive.append(self)
            source = data.data if isinstance(data, Tensor) else data
            if id(source) not in rec.slot_of:
                rec.check_not_argument_view(source)  # Tensor(x[t]) may copy: check before the link is lost
            elif rec.traced(source):  # a copy of an input: recorded, not frozen
                target = self.data.dtype

                def convert(value: Any) -> tuple[Any]:
                    return (np.array(value, dtype=target, copy=True),)

                rec._emit("tensor", convert, (rec.slot_of[id(source)],), [rec._bind(self.data)])

        def accumulated(self: Tensor, grad: Tensor) -> None:
            rec.accumulate(self, grad)
            _Tracing.tracer = None  # the sum below is the replay's job, not an instruction
            try:
                accumulate(self, grad)
            finally:
                _Tracing.tracer = rec
            rec.grads_written[id(self)] = (self, self.grad)
            if self.grad is not None:
                rec.grad_arrays.add(id(self.grad.data))
                rec.alive.append(self.grad.data)

        def jvp_refused(node: Function, *args: Any) -> Any:
            rec.refuse(f"forward mode (tg.func.jvp, jacfwd, hvp, nn.rtrl; here a JVP of {node.name})")

        self.call_jvp = forward_mode._call_jvp
        forward_mode._call_jvp = jvp_refused  # type: ignore[assignment]
        Tensor._make = classmethod(made)  # type: ignore[method-assign,assignment]
        Tensor.__init__ = initialised  # type: ignore[method-assign]
        Tensor._accumulate_grad = accumulated  # type: ignore[method-assign]
        _Tracing.tracer = rec

    def __exit__(self, *exc: object) -> None:
        _Tracing.tracer = None
        for name, original in self.saved.items():
            setattr(Tensor, name, original)
        forward_mode._call_jvp = self.call_jvp
        rec = self.recorder
        if exc[0] is None:
            generator = factories.default_generator()
            if generator is not self.generator or generator.bit_generator.state != self.state:
                rec.refuse("drawing random numbers from the global generator (tg.randn, nn.Dropout, ...)")
            legacy = np.random.get_state(legacy=False)
            if not same_state(legacy, self.legacy):
                rec.refuse("drawing random numbers from numpy's global generator (np.random)")


def same_state(a: Any, b: Any) -> bool:
    """Equal bit-generator states (nested dicts of ints, and arrays for MT19937)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


__all__ = ["recording", "same_state"]
