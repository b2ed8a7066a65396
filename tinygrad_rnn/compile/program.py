"""program.py — a recorded step laid flat: numbered slots and the instructions that fill them.

A `Program` is a Wengert list. Every value the recorded call computed lives
in a numbered slot (`%7`); an instruction is a plain function on arrays that
reads some slots and writes others. Slots are filled from three places before
the first instruction runs:

- the call's arguments (the arrays of its Tensor and ndarray arguments);
- reads: the *current* `.data` of a tensor the function closed over (a
  parameter), so an optimizer that rebinds `.data` between calls just works;
- constants: arrays made inside the function from no input (a target of
  ones, a seed gradient of 1, zeros for an output no gradient reached).

Replaying is then `for instruction in program: instruction.run(slots)`: no
Tensor, no graph walk, no dictionary keyed by tensors, no shape check.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.function import Function
from ..core.mode import _GradMode
from ..core.tensor import Tensor


@dataclass
class Instruction:
    """`outs = run(*ins)` over slot numbers; `label` and `params` are what the listing shows."""

    label: str
    run: Callable[..., tuple[Any, ...]]
    ins: tuple[int, ...]
    outs: tuple[int, ...]
    params: str = ""
    backward: bool = False  # part of the backward pass (for the listing's divider)
    vjp: Any = None  # for a VJP: (backward, kind, posts, raw shapes) as recorded, for the unwrap_vjps pass
    frees: tuple[int, ...] = ()  # slots nothing reads after this instruction (the release pass): dropped after it
    single: bool = False  # run returns its one output itself, not a 1-tuple
    fresh: FreshForward | None = None  # a forward on a new ctx: what straight_line writes out in place of `run`

    def freeing(self, slots: tuple[int, ...]) -> Instruction:
        """A copy of this instruction that frees `slots` after it (the original, in the recorded program, stays)."""
        copied = object.__new__(Instruction)
        copied.__dict__.update(self.__dict__)  # 4x cheaper than copy.copy, over programs of 30000 instructions
        copied.frees = slots
        return copied


@dataclass(frozen=True)
class FreshForward:
    """What a forward instruction's `run` does, spelled out so the generated replay can do it inline:
    `ctx = new(cls); ctx._saved = (); ctx.needs_input_grad = needs; out = cls.forward(ctx, *ins, **kwargs);
    ctx.parents = ins`, then `out` and `ctx` into the instruction's two slots."""

    run: Callable[..., tuple[Any, ...]]  # the same as a function; inlined only while the instruction still calls it
    cls: type[Function]
    needs: tuple[bool, ...]
    kwargs: dict[str, Any]


@dataclass
class Program:
    """One recording of a compiled function, for one key (shapes, dtypes, aliasing, other arguments)."""

    size: int = 0  # number of slots
    meta: list[str] = field(default_factory=list)  # "(4, 8) float64" per slot, for the listing
    arguments: list[tuple[int, int]] = field(default_factory=list)  # (slot, argument index)
    reads: list[tuple[int, Tensor]] = field(default_factory=list)  # (slot, closed-over tensor)
    constants: list[tuple[int, Any]] = field(default_factory=list)
    instructions: list[Instruction] = field(default_factory=list)
    grad_writes: list[tuple[int, Any]] = field(default_factory=list)  # (slot, argument index or a tensor)
    result: Any = None  # None, a slot, or a tuple of slots: fn's return value
    python_arrays: list[tuple[str, Any]] = field(default_factory=list)  # (op, array) made in Python, kept as is
    contexts: set[int] = field(default_factory=set)  # slots holding a forward's ctx (what its VJP reads)
    discarded: set[int] = field(default_factory=set)  # slots for values nothing reads (a VJP's None), listed as _
    products: set[int] = field(default_factory=set)  # slots that held a deferred sum of products (core/products.py)
    _straight: Callable[[list[Any]], dict[int, Any]] | None = None
    verified: bool = True  # False until a second recording shows python_arrays did not change

    def results(self) -> set[int]:
        """The slots read after the last instruction: each `.grad` write, and fn's return value."""
        kept = {slot for slot, _ in self.grad_writes}
        result = self.result
        return kept | (set(result) if isinstance(result, tuple) else set() if result is None else {result})

    def new_slot(self, value: Any) -> int:
        self.meta.append(describe(value))
        self.size += 1
        return self.size - 1

    def replay(self, arrays: list[Any], tensors: list[Any]) -> Any:
        """Run the program on a call's argument arrays; write `.grad`s; return fn's result."""
        previous, _GradMode.enabled = _GradMode.enabled, False  # VJPs read ctx.saved_tensors as arrays
        # Reference counts free a replay's values (a ctx holds arrays; only its slot holds the ctx), so
        # the cycle collector, triggered every ~700 new objects, would only walk the young ones again
        # and again: 7-11% of a replay (measured on and off). A cycle, if any, is collected after.
        collecting = gc.isenabled()
        gc.disable()
        try:
            slots = self.straight_line()(arrays)
        finally:
            _GradMode.enabled = previous
            if collecting:
                gc.enable()
        for slot, target in self.grad_writes:
            leaf = tensors[target] if isinstance(target, int) else target
            accumulate_grad(leaf, Tensor._make(slots[slot], None))
        if self.result is None:
            return None
        if isinstance(self.result, tuple):
            return tuple(Tensor._make(slots[s], None) for s in self.result)
        return Tensor._make(slots[self.result], None)

    def straight_line(self) -> Callable[[list[Any]], dict[int, Any]]:
        """The program as one generated Python function, made once: a line per instruction, a local
        variable per slot (`s7 = run3(s1, s5)[0]`), so a replay does no list indexing and no loop.
        A forward on a fresh ctx is written out in place (`FreshForward`), and `del` drops the slots
        an instruction frees. It returns the slots that `.grad` writes and the result read."""
        if self._straight is None:
            source, names = self._generate()
            exec(source, names)  # our own generated code: slot names and calls only
            self._straight = names["replay"]
        return self._straight

    def source(self) -> str:
        """The Python text of `straight_line`'s function (the names it calls are bound when it is made)."""
        return self._generate()[0]

    def _generate(self) -> tuple[str, dict[str, Any]]:
        names: dict[str, Any] = {"ndarray": np.ndarray, "one_output": _one_output}
        lines = ["def replay(arrays):"]
        for slot, index in self.arguments:
            lines.append(f"    s{slot} = arrays[{index}]")
        for k, (slot, tensor) in enumerate(self.reads):
            names[f"read{k}"] = tensor
            lines.append(f"    s{slot} = read{k}.data")
        for k, (slot, value) in enumerate(self.constants):
            names[f"constant{k}"] = value
            lines.append(f"    s{slot} = constant{k}")
        for k, ins in enumerate(self.instructions):
            args = ", ".join(f"s{i}" for i in ins.ins)
            outs = [f"s{o}" for o in ins.outs]
            fresh = ins.fresh
            if fresh is not None and fresh.run is ins.run and len(outs) == 2:
                # The forward's own call with no function around it (a Python call costs as much as a small op).
                out, ctx = outs
                names.update({f"cls{k}": fresh.cls, f"needs{k}": fresh.needs, f"kwargs{k}": fresh.kwargs})
                names.update({f"new{k}": fresh.cls.__new__, f"forward{k}": fresh.cls.forward})
                call = ", ".join([ctx, *(f"s{i}" for i in ins.ins), *([f"**kwargs{k}"] if fresh.kwargs else [])])
                lines.append(f"    {ctx} = new{k}(cls{k}); {ctx}._saved = (); {ctx}.needs_input_grad = needs{k}")
                parents = f"({args},)" if len(ins.ins) == 1 else f"({args})"
                lines.append(f"    {out} = forward{k}({call}); {ctx}.parents = {parents}")
                lines.append(f"    if type({out}) is not ndarray: {out} = one_output({out})")
            else:
                names[f"run{k}"] = ins.run
                call = f"run{k}({args})"
                if len(outs) == 1:
                    lines.append(f"    {outs[0]} = {call}" + ("" if ins.single else "[0]"))
                else:
                    lines.append(f"    {', '.join(outs)} = {call}")
            if ins.frees:  # drop our references, so an array no one else holds goes back to the allocator now
                lines.append(f"    del {', '.join(f's{f}' for f in ins.frees)}")
        lines.append("    return {" + ", ".join(f"{w}: s{w}" for w in sorted(self.results())) + "}")
        return "\n".join(lines), names

    def name(self, slot: int) -> str:
        if slot in self.discarded:
            return "_"
        return f"ctx%{slot}" if slot in self.contexts else f"%{slot}"

    def listing(self) -> str:
        """The program as `tg.trace` prints a tape: inputs, then forward, then backward."""
        lines = [f"%{s} = argument {i}  {self.meta[s]}" for s, i in self.arguments]
        lines += [f"%{s} = read {_tensor_name(t)}  {self.meta[s]}" for s, t in self.reads]
        lines += [f"%{s} = constant  {self.meta[s]}" for s, _ in self.constants]
        in_backward = False
        for ins in self.instructions:
            if ins.backward and not in_backward:
                lines.append("-- backward --")
                in_backward = True
            args = ", ".join(self.name(i) for i in ins.ins)
            if ins.params:
                args = f"{args}, {ins.params}" if args else ins.params
            outs = ", ".join(self.name(o) for o in ins.outs) or "()"
            shown = "; ".join(self.meta[o] for o in ins.outs if self.meta[o])
            lines.append(f"{outs} = {ins.label}({args})  {shown}".rstrip())
            if ins.frees:
                lines.append("free " + ", ".join(self.name(f) for f in ins.frees))
        for slot, target in self.grad_writes:
            where = f"argument {target}" if isinstance(target, int) else _tensor_name(target)
            lines.append(f"{where}.grad += %{slot}")
        return "\n".join(lines)


# The engine's own `Tensor._accumulate_grad`, taken at import: intercept.py swaps it while recording.
accumulate_grad: Callable[[Tensor, Tensor], None] = Tensor._accumulate_grad


def describe(value: Any) -> str:
    if isinstance(value, np.ndarray | np.generic) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        shape = tuple(value.shape)
        text = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
        return f"{text} {np.dtype(value.dtype)}"
    return ""


def _one_output(raw: Any) -> Any:
    """A forward's one output as an array: a ufunc on 0-d arrays gives a numpy scalar; a tuple of one, its item."""
    return np.asarray(raw[0] if type(raw) is tuple else raw)


def _tensor_name(tensor: Tensor) -> str:
    return f"tensor{tuple(tensor.shape)}"
