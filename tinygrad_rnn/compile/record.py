"""record.py — run a function once, eagerly, and write down every step the engine takes.

While a `Recorder` is installed (`function._Tracing.tracer`), the engine tells
it about each primitive it applies (`forward`) and each step of a plain
backward pass: each VJP (`vjp`), each sum of two gradient terms (`add`), and
each deferred product sum made into an array (`as_array`). The recorder maps
every array it sees, by identity, to a slot of the `Program`, and writes one
instruction per step. The backward part of the program is therefore the
engine's own VJPs, recorded, never written by hand.

Values a forward computes from data and keeps for its VJP (relu's mask,
max's positions, where's condition) must be recomputed on every replay. So
a forward instruction calls the primitive's `forward` on a fresh `ctx`, and
outputs that ctx into a slot; the VJP instruction calls `backward` on that
ctx. Nothing a forward computed from the first call's data survives into the
second.

What cannot be recorded is refused, loudly, here (`CompileError`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.checkpoint import Checkpoint
from ..core.errors import GradientError
from ..core.function import Function
from ..core.mode import backward_observers, forward_observers
from ..core.products import ProductSum
from ..core.shapes import unbroadcast_axes
from ..core.tensor import Tensor
from .program import FreshForward, Instruction, Program, describe


class CompileError(GradientError):
    """tg.compile met something in the function that a replay could not reproduce."""


class Recorder:
    """Builds one `Program` while the function runs eagerly (see the module docstring)."""

    def __init__(self, name: str, arrays: list[Any], tensors: list[Any]) -> None:
        self.name = name
        self.program = Program()
        self.slot_of: dict[int, int] = {}  # id(array or ctx) -> slot
        self.alive: list[Any] = []  # everything mapped by id, kept alive so that ids are not reused
        self.created: set[int] = set()  # ids of tensors made during the recording (not closed over)
        self.arg_tensor: dict[int, int] = {}  # id(argument Tensor) -> its index
        self.constant_slots: set[int] = set()
        self.reads: list[tuple[Tensor, Any]] = []  # (closed-over tensor, the array read from it)
        self.grads_written: dict[int, tuple[Tensor, Any]] = {}  # id(leaf) -> (leaf, the .grad backward left)
        self.grad_arrays: set[int] = set()  # ids of the arrays in .grad of the tensors fn reaches (kept in `alive`)
        self.in_backward = False
        self.argument_arrays = [(i, a) for i, a in enumerate(arrays) if isinstance(a, np.ndarray)]
        for index, array in enumerate(arrays):
            if array is not None and id(array) not in self.slot_of:
                self.program.arguments.append((self._bind(array), index))
        for index, tensor in enumerate(tensors):
            if tensor is not None:
                self.arg_tensor[id(tensor)] = index
                self.created.add(id(tensor))

    # ------------------------------------------------------------ slots

    def _bind(self, value: Any) -> int:
        slot = self.program.new_slot(value)
        self.slot_of[id(value)] = slot
        if type(value) is ProductSum:  # for the stacked_products pass
            self.program.products.add(slot)
        self.alive.append(value)
        return slot

    def slot(self, array: Any, tensor: Tensor | None = None) -> int:
        """The slot holding `array`: known, or a new read (a closed-over tensor's data), or a constant."""
        known = self.slot_of.get(id(array))
        if known is not None:
            return known
        if id(array) in self.grad_arrays:
            self.refuse("reading .grad (a replay writes .grad only at its end, and never reads it)")
        slot = self._bind(array)
        if tensor is not None and id(tensor) not in self.created:
            self.program.reads.append((slot, tensor))
            self.reads.append((tensor, array))
        else:
            self.check_not_argument_view(array)
            self.program.constants.append((slot, array))
            self.constant_slots.add(slot)
        return slot

    def check_not_argument_view(self, array: Any) -> None:
        """Refuse a constant that is a view of an argument's array (`x[t]` on an ndarray argument, or on a
        Tensor argument's .data): made in Python, it would keep the first call's values on every replay."""
        if not isinstance(array, np.ndarray) or not array.size:
            return
        for index, argument in self.argument_arrays:
            if np.may_share_memory(array, argument):
                raise CompileError(
                    f"tg.compile({self.name}): an op got an array of shape {array.shape} that Python cut from "
                    f"argument {index} (indexing or slicing an ndarray, e.g. x[t], or a Tensor's .data); a replay "
                    "would reuse the first call's values. Make it a Tensor first (tg.Tensor(x)) and index the "
                    "Tensor, or pass the pieces as arguments"
                )

    def traced(self, array: Any) -> bool:
        """True when `array` depends on the call's inputs or reads (is not a constant)."""
        slot = self.slot_of.get(id(array))
        return slot is not None and slot not in self.constant_slots

    # ------------------------------------------------------------ hooks the engine calls

    def forward(
        self,
        ctx: Function,
        args: tuple[Any, ...],
        arrays: list[Any],
        kwargs: dict[str, Any],
        outs: tuple[Any, ...],
        record: bool,
    ) -> None:
        cls = type(ctx)
        if record and not cls.backward_on_arrays:
            raise CompileError(
                f"tg.compile({self.name}): {cls.__name__} is a tg.Function whose backward is written for "
                "Tensors; a compiled step can replay only VJPs that run on arrays. Set "
                f"{cls.__name__}.backward_on_arrays = True if its backward uses only operators and Op.apply"
            )
        if forward_observers or backward_observers:
            self.refuse("observers (tg.observe and the study tools in tinygrad_rnn.inspect)")
        if cls is Checkpoint:
            raise CompileError(
                f"tg.compile({self.name}): tg.checkpoint (a layer's checkpoint_every, nn.checkpointed) inside a "
                "compiled function is not supported: its backward recomputes the forward, which a recorded "
                "program cannot replay, and a program keeps every slot anyway. Compile the layer without "
                "checkpointing, or run the checkpointed step eagerly"
            )
        template: list[tuple[bool, Any]] = []  # (is a slot, slot or static value) per positional argument
        for a, array in zip(args, arrays, strict=True):
            if isinstance(a, Tensor):
                template.append((True, self.slot(array, a)))
            elif isinstance(a, np.ndarray):
                template.append((True, self.slot(a)))
            else:
                template.append((False, a))
        for a in args:
            if not isinstance(a, Tensor):
                self.check_python_values(ctx.name, a)
        for k, v in kwargs.items():
            if not self.traced(v):
                self.check_python_values(f"{ctx.name}({k}=...)", v)
        static_kwargs = {k: v for k, v in kwargs.items() if not self.traced(v)}
        slot_kwargs = [(k, self.slot_of[id(v)]) for k, v in kwargs.items() if self.traced(v)]
        needs = ctx.needs_input_grad

        if all(is_slot for is_slot, _ in template) and not slot_kwargs:  # the common case, without the template
            forward = cls.forward

            def run_plain(*values: Any) -> tuple[Any, ...]:
                fresh = cls.__new__(cls)
                fresh._saved = ()
                fresh.needs_input_grad = needs
                raw = forward(fresh, *values, **static_kwargs)
                fresh.parents = values
                if type(raw) is np.ndarray:
                    return (raw, fresh)
                if type(raw) is tuple:
                    return (*(np.asarray(r) for r in raw), fresh)
                return (np.asarray(raw), fresh)

        def run(*values: Any) -> tuple[Any, ...]:
            fresh = cls.__new__(cls)
            fresh._saved = ()
            fresh.needs_input_grad = needs
            it = iter(values)
            inputs = [next(it) if is_slot else v for is_slot, v in template]
            kw = dict(static_kwargs)
            for k, _ in slot_kwargs:
                kw[k] = next(it)
            raw = cls.forward(fresh, *inputs, **kw)
            fresh.parents = tuple(inputs)  # VJPs read the inputs' ranks from here
            if type(raw) is tuple:
                return (*(np.asarray(r) for r in raw), fresh)
            return (raw if type(raw) is np.ndarray else np.asarray(raw), fresh)

        ins = tuple(v for is_slot, v in template if is_slot) + tuple(s for _, s in slot_kwargs)
        out_slots = tuple(self._bind(o) for o in outs)
        ctx_slot = self.program.new_slot(None)
        self.program.contexts.add(ctx_slot)
        self.slot_of[id(ctx)] = ctx_slot
        self.alive.append(ctx)
        params = ", ".join(f"{k}={_short(v)}" for k, v in static_kwargs.items())
        statics = [_short(v) for is_slot, v in template if not is_slot and v is not None]
        params = ", ".join([*statics, params] if params else statics)
        plain = all(is_slot for is_slot, _ in template) and not slot_kwargs
        chosen = run_plain if plain else run
        fresh = FreshForward(chosen, cls, needs, static_kwargs) if plain and len(outs) == 1 else None
        instruction = Instruction(ctx.name, chosen, ins, (*out_slots, ctx_slot), params, fresh=fresh)
        self.program.instructions.append(instruction)

    def check_python_values(self, where: str, value: Any) -> None:
        """Arrays an op receives that no recorded step made: computed in Python, so possibly from data.

        One made from a traced array inside a tuple (an index) is refused now; the others are kept,
        and `Compiled` records the second call again to check they did not change (see __init__.py)."""
        if isinstance(value, tuple | list):
            for item in value:
                self.check_python_values(where, item)
        elif isinstance(value, np.ndarray):
            argument = next((i for i, a in self.argument_arrays if a is value), None)
            if argument is not None:
                raise CompileError(
                    f"tg.compile({self.name}): {where} got argument {argument} inside a tuple or list (e.g. "
                    "w[idx, 1]); only an index passed alone is replayed with each call's values. Index with it "
                    "alone (w[idx][:, 1]), or use gather"
                )
            if self.traced(value):
                raise CompileError(
                    f"tg.compile({self.name}): {where} got an index or mask computed from this call's values; "
                    "a replay would reuse the first call's. Not supported inside a compiled function"
                )
            if id(value) not in self.slot_of:
                self.program.python_arrays.append((where, value))

    def begin_pass(self, create_graph: bool) -> None:
        if create_graph:
            self.refuse("create_graph=True (higher-order gradients)")
        if backward_observers:  # subscribed after the forward ran (backward_trace, watch): no forward saw them
            self.refuse("observers (tg.observe and the study tools in tinygrad_rnn.inspect)")
        self.in_backward = True

    def vjp(self, node: Function, grad_outs: list[Any], raw: Any, grads: list[Any]) -> None:
        ctx_slot = self.slot_of.get(id(node))
        if ctx_slot is None:
            raise CompileError(
                f"tg.compile({self.name}): the backward pass reached {node.name}, recorded before the call; "
                "detach state carried over from an earlier call (e.g. h = h.detach())"
            )
        cls = type(node)
        ins = (ctx_slot, *(self.slot(g) for g in grad_outs))  # before the outputs: a VJP may return its input
        raws = list(raw) if type(raw) is tuple or type(raw) is list else [raw]
        posts: list[tuple[tuple[int, ...] | None, tuple[int, ...], Any] | None] = []
        out_slots: list[int] = []
        assert node.parents is not None
        for i, grad in enumerate(grads):
            if grad is None:
                posts.append(None)
                continue
            shape = tuple(node.parents[i].data.shape)
            axes = unbroadcast_axes(raws[i].shape, shape) if tuple(raws[i].shape) != shape else None
            dtype = node.parents[i].data.dtype
            posts.append((axes, shape, None if raws[i].dtype == dtype else dtype))
            out_slots.append(self._bind(grad))

        def run(ctx: Function, *grad_outs: Any) -> tuple[Any, ...]:
            got = cls.backward(ctx, *grad_outs)
            values = list(got) if type(got) is tuple or type(got) is list else [got]
            out = []
            for value, post in zip(values, posts, strict=True):
                if post is None:
                    continue
                axes, shape, dtype = post
                if axes is not None:
                    value = value.sum(axis=axes, keepdims=True).reshape(shape)
                if dtype is not None:
                    value = value.astype(dtype)
                out.append(value)
            return tuple(out)

        kind = "tuple" if type(raw) is tuple else "list" if type(raw) is list else "single"
        self._emit(f"{node.name}.vjp", run, ins, out_slots)
        raw_shapes = tuple((tuple(r.shape), describe(r)) if r is not None else ((), "") for r in raws)
        self.program.instructions[-1].vjp = (cls.backward, kind, tuple(posts), raw_shapes)

    def add(self, previous: Any, grad: Any) -> Any:
        total = previous + grad
        ins = (self.slot(previous), self.slot(grad))
        self._emit("add", add_terms, ins, [self._bind(total)], single=True)
        return total

    def as_array(self, value: Any) -> Any:
        array = np.asarray(value)
        if array is not value:
            self._emit("asarray", np.asarray, (self.slot(value),), [self._bind(array)], single=True)
        return array

    def leaf_grad(self, leaf: Tensor, grad: Any) -> Any:
        if leaf._hooks:
            self.refuse("register_hook")
        return self.as_array(grad)

    def accumulate(self, leaf: Tensor, grad: Tensor) -> None:
        """`leaf.grad += grad` at the end of `backward()`: replayed with the engine's own accumulation."""
        slot = self.slot(grad.data)
        index = self.arg_tensor.get(id(leaf))
        self.program.grad_writes.append((slot, leaf if index is None else index))

    def _emit(self, label: str, run: Any, ins: tuple[int, ...], outs: list[int], single: bool = False) -> None:
        instruction = Instruction(label, run, ins, tuple(outs), backward=self.in_backward, single=single)
        self.program.instructions.append(instruction)

    def refuse(self, feature: str) -> None:
        raise CompileError(
            f"tg.compile({self.name}): {feature} inside a compiled function is not supported: "
            "a replay runs plain numpy calls and would silently skip it. Use it outside the compiled function"
        )

    def refuse_read(self, method: str) -> None:
        raise CompileError(
            f"tg.compile({self.name}): Tensor.{method}() reads a computed value into Python while recording; "
            "Python control flow that depends on tensor values cannot be replayed. Move it outside the "
            "compiled function (e.g. return the loss and call .item() on the result)"
        )


def _short(value: Any) -> str:
    """A static parameter as the listing shows it: arrays by dtype and shape, the rest by repr."""
    if isinstance(value, np.ndarray):
        return f"<{describe(value)} array>"
    if isinstance(value, tuple | list) and any(isinstance(v, np.ndarray) for v in value):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    return repr(value)


# A sum of two gradient terms, `a + b`: the operator itself, so a replay makes no Python call around it.
add_terms: Callable[[Any, Any], Any] = operator.add


__all__ = ["CompileError", "Recorder", "add_terms", "describe"]
