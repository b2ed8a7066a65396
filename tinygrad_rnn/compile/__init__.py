"""tinygrad_rnn.compile — record a training step once, replay it as a flat program of numpy calls.

`step = tg.compile(fn)` has fn's signature. The first call with a given key
runs `fn` eagerly while record.py writes down every step the engine takes,
forward and backward, as a `Program` (program.py). Later calls with the same
key replay that program. The key is made of:

- the shape and dtype of every Tensor and float ndarray argument (and whether
  a Tensor argument requires grad);
- the values of integer and boolean ndarray arguments (lengths, indices,
  labels), since Python may branch on them where the recorder cannot see;
- which arguments share memory (aliasing);
- every other argument by equality (numbers, strings) or identity;
- the identity of the tensors `fn` closes over (its closure, globals, bound
  `self`, and the parameters of Modules found there): a parameter *replaced*
  by a new Tensor retraces, one *updated* in place (`.data` rebound, as the
  optimizers do) is read afresh on every call.

>>> import numpy as np
>>> import tinygrad_rnn as tg
>>> w = tg.Tensor([1.0, 2.0], requires_grad=True)
>>> step = tg.compile(lambda x: (x * w).sum().backward())
>>> step(np.array([3.0, 4.0])); w.grad.numpy()
array([3., 4.])
>>> step(np.array([5.0, 6.0])); w.grad.numpy()  # replayed: accumulates, as eager does
array([ 8., 10.])
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.function import Function
from ..core.tensor import Tensor
from .intercept import recording, same_state
from .passes import PASSES
from .program import Program
from .record import CompileError, Recorder


class Compiled:
    """The callable `tg.compile(fn)` returns: a cache of programs, one per key."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__qualname__", type(fn).__name__)
        self.cache: dict[Any, Program] = {}
        self.last: Program | None = None
        self.recorded: Program | None = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        flat = [*args, *kwargs.values()]
        arrays = [a.data if isinstance(a, Tensor) else a if isinstance(a, np.ndarray) else None for a in flat]
        tensors = [a if isinstance(a, Tensor) else None for a in flat]
        key = (tuple(kwargs), _key(flat, arrays), tuple(map(id, closed_over_tensors(self.fn))))
        program = self.cache.get(key)
        if program is None or not program.verified:
            fresh = self._record(args, kwargs, arrays, tensors)
            self.recorded = fresh  # as recorded, before the passes (for listings that compare)
            for optimise in PASSES:
                fresh = optimise(fresh)
            if program is not None:  # the second call: were the arrays made in Python the same again?
                del self.cache[key]
                _check_same_python_arrays(self.name, program, fresh)
                fresh.verified = True
            else:
                fresh.verified = not fresh.python_arrays
            self.cache[key] = self.last = fresh
            return self._result
        self.last = program
        return program.replay(arrays, tensors)

    def _record(self, args: tuple[Any, ...], kwargs: dict[str, Any], arrays: list[Any], tensors: list[Any]) -> Program:
        recorder = Recorder(self.name, arrays, tensors)
        watched = closed_over_tensors(self.fn)
        before = [(t, t.data, t.grad) for t in watched]
        for tensor in [*watched, *(t for t in tensors if t is not None)]:
            if tensor.grad is not None:
                recorder.grad_arrays.add(id(tensor.grad.data))
                recorder.alive.append(tensor.grad.data)
        generators = [(g, g.bit_generator.state) for g in _reachable_generators(self.fn, [*args, *kwargs.values()])]
        with recording(recorder):
            result = self.fn(*args, **kwargs)
        for generator, state in generators:
            if not same_state(generator.bit_generator.state, state):
                recorder.refuse(
                    "drawing random numbers from a numpy Generator that the function reaches (an argument, "
                    "a closed-over one, or a Module's own, e.g. nn.Dropout(p, rng=...))"
                )
        written = {id(target) for _, target in recorder.program.grad_writes if not isinstance(target, int)}
        for tensor, data, grad in before:
            if tensor.data is not data:
                recorder.refuse(f"rebinding .data of a tensor of shape {tensor.shape} (an optimizer step?)")
            if tensor.grad is not grad and id(tensor) not in written:
                recorder.refuse("changing .grad other than by backward (zero_grad?)")
        for tensor, grad in recorder.grads_written.values():
            if tensor.grad is not grad:
                recorder.refuse(
                    f"changing .grad of a tensor of shape {tensor.shape} after backward (clip_grad_norm_, "
                    "clip_grad_value_, zero_grad?)"
                )
        for tensor, data in recorder.reads:
            if tensor.data is not data:
                recorder.refuse(f"rebinding .data of a tensor of shape {tensor.shape} (an optimizer step?)")
        recorder.program.result = _result_slots(recorder, result)
        self._result = result
        return recorder.program

    @property
    def program(self) -> str:
        """The listing of the program the last call ran (or recorded)."""
        if self.last is None:
            raise CompileError(f"tg.compile({self.name}): nothing recorded yet; call the compiled function first")
        return self.last.listing()


def compile(fn: Callable[..., Any]) -> Compiled:  # PyTorch's name (torch.compile)
    """Record `fn` (a forward and backward pass) on its first call per key; replay it as flat numpy after.

    See the module docstring for the key and docs/compile.md for what is recorded."""
    return Compiled(fn)


def _check_same_python_arrays(name: str, first: Program, second: Program) -> None:
    """Refuse a program whose ops got arrays computed in Python (masks, indices) that changed between calls."""
    if len(first.python_arrays) == len(second.python_arrays):
        for (op, a), (op2, b) in zip(first.python_arrays, second.python_arrays, strict=True):
            if op != op2 or a.shape != b.shape or not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                break
        else:
            return
        where = f"{op} got"
    else:
        where = "ops got"
    raise CompileError(
        f"tg.compile({name}): {where} an array computed in Python from this call's values (a mask or an "
        "index made outside the recorded ops, e.g. clamp with tensor bounds or max(dim=...)), and it changed "
        "between calls; a replay would reuse the first call's. Not supported inside a compiled function"
    )


def _key(flat: list[Any], arrays: list[Any]) -> tuple[Any, ...]:
    parts: list[Any] = []
    for i, (a, array) in enumerate(zip(flat, arrays, strict=True)):
        if array is None:
            parts.append(("other", a) if _hashable(a) else ("object", id(a)))
            continue
        alias = next((j for j in range(i) if arrays[j] is not None and np.may_share_memory(arrays[j], array)), -1)
        grad = isinstance(a, Tensor) and a.requires_grad
        values = array.tobytes() if array.dtype.kind in "biu" else None
        parts.append((array.shape, array.dtype.str, grad, alias, values))
    return tuple(parts)


def _hashable(value: Any) -> bool:
    return isinstance(value, int | float | str | bool | type(None) | tuple) and _try_hash(value)


def _try_hash(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def closed_over_tensors(fn: Any) -> list[Tensor]:
    """The tensors fn reaches by name: closure cells, globals it names, defaults, a bound self,
    and the parameters of Modules among them (one level into lists, tuples and dicts)."""
    found: list[Tensor] = []
    for item in _reachable(fn):
        if isinstance(item, Tensor):
            found.append(item)
        elif hasattr(item, "parameters") and not inspect.isclass(item) and callable(item.parameters):
            found += list(item.parameters())
    return found


def _reachable_generators(fn: Any, args: list[Any]) -> list[np.random.Generator]:
    """The numpy Generators fn reaches by name or is given, and those Modules among them hold (a
    Dropout's `rng`): a draw from one would be frozen into the program, so `_record` refuses it."""
    found: dict[int, np.random.Generator] = {}
    for item in [*_reachable(fn), *args]:
        owners = [m for _, m in item.named_modules()] if hasattr(item, "named_modules") else [item]
        for owner in owners:
            values = [owner, *getattr(owner, "__dict__", {}).values()]
            found.update((id(v), v) for v in values if isinstance(v, np.random.Generator))
    return list(found.values())


def _reachable(fn: Any) -> list[Any]:
    """What fn reaches by name: closure cells, globals it names, defaults and a bound self,
    one level into lists, tuples and dicts."""
    objects: list[Any] = []
    code = getattr(fn, "__code__", None)
    if hasattr(fn, "__self__"):
        objects.append(fn.__self__)
    if code is not None:
        objects += [c.cell_contents for c in fn.__closure__ or () if _filled(c)]
        names = getattr(fn, "__globals__", {})
        objects += [names[n] for n in code.co_names if n in names]
        objects += list(fn.__defaults__ or ())
    items: list[Any] = []
    for obj in objects:
        items += list(obj.values()) if isinstance(obj, dict) else list(obj) if isinstance(obj, list | tuple) else [obj]
    return items


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018  # an empty cell raises
    except ValueError:
        return False
    return True


def _result_slots(recorder: Recorder, result: Any) -> Any:
    if result is None:
        return None
    items = result if isinstance(result, tuple) else (result,)
    slots = []
    for item in items:
        if not isinstance(item, Tensor):
            raise CompileError(
                f"tg.compile({recorder.name}): the function returned {type(item).__name__}; "
                "a compiled function may return a Tensor, a tuple of Tensors, or None"
            )
        node: Function | None = item._node
        if node is not None and node.parents is not None:
            raise CompileError(
                f"tg.compile({recorder.name}): the function returned a tensor of shape {item.shape} whose graph "
                "is still alive; a replay builds no graph to call backward on later. Call backward inside the "
                "function, or return .detach()"
            )
        slots.append(recorder.slot(item.data, item))
    return tuple(slots) if isinstance(result, tuple) else slots[0]


__all__ = ["CompileError", "Compiled", "compile"]
