"""passes.py — optimisations over a recorded `Program`, each a named function from program to program.

A pass may change how a program computes, never what it writes: fn's return
value and every `.grad`. Each is shown with its before/after listing in
docs/compile.md and checked by tests/test_compile.py.
"""

from __future__ import annotations

import dataclasses
import operator
from collections import Counter
from typing import Any

import numpy as np

from .batching import batched_matmuls
from .elementwise import batched_elementwise
from .program import Instruction, Program
from .record import add_terms
from .stacking import stacked_products


def dead_code(program: Program) -> Program:
    """Drop every instruction none of whose outputs is read later, by another instruction, a `.grad`
    write or fn's return value.

    An eager call computes things nothing reads (a forward value no loss depends on, a
    gradient for an input that needs none); the tape keeps them because it cannot know.
    Every instruction is a pure function of its inputs (a forward runs on a fresh ctx),
    so removing one that nothing reads changes no result. One walk from the end suffices:
    an instruction is live only if a live one after it (or a result) reads it."""
    live = program.results()
    kept = []
    for ins in reversed(program.instructions):
        if live.intersection(ins.outs):
            kept.append(ins)
            live.update(ins.ins)
    kept.reverse()
    return dataclasses.replace(
        program,
        instructions=kept,
        _straight=None,
        reads=[(s, t) for s, t in program.reads if s in live],
        constants=[(s, v) for s, v in program.constants if s in live],
        arguments=[(s, i) for s, i in program.arguments if s in live],
    )


def add_in_place(program: Program) -> Program:
    """Accumulate gradient terms into one buffer: `%9 = add(%7, %8)` becomes `%9 = add_(%7, %8)`
    (numpy's `+=`) when %7 is a sum an earlier `add` made and this add is its only reader.

    A weight used at T steps receives T terms; the eager walk adds them in place into a
    buffer it owns, deciding ownership per tensor at run time. Here it is decided once:
    a sum no one else reads, of the same shape and dtype as the result, is ours to
    overwrite, and `a += b` gives the same bits as `a + b`."""
    reads = Counter(i for ins in program.instructions for i in ins.ins)
    kept = program.results()
    sums = {ins.outs[0] for ins in program.instructions if ins.run is add_terms or ins.run is _add_into}
    rewritten = []
    for ins in program.instructions:
        if ins.run is add_terms:  # a sum of two gradient terms (not the forward op of the same name)
            total, (buffer, term) = ins.outs[0], ins.ins
            ours = buffer in sums and reads[buffer] == 1 and buffer not in kept and buffer != term
            if ours and program.meta[buffer] == program.meta[total]:
                ins = Instruction("add_", _add_into, ins.ins, ins.outs, backward=ins.backward, single=True)
        rewritten.append(ins)
    return dataclasses.replace(program, instructions=rewritten, _straight=None)


_add_into = operator.iadd  # `buffer += term`, returning the buffer


def unwrap_vjps(program: Program) -> Program:
    """Call each primitive's VJP directly, and list the shape work that was wrapped around it.

    As recorded, a VJP instruction is a wrapper: it calls `backward`, drops the gradients of
    inputs that need none, sums each gradient back to its input's shape (unbroadcast) and
    casts it to its input's dtype, checking every case on every call. The recording already
    knows which cases happen, so here each becomes an instruction of its own, only where it
    is needed: `%9 = add.vjp(ctx%3, %8)` becomes `%9, %12 = add.vjp(ctx%3, %8)` then
    `%10 = sum_to(%12, axes=(0,), shape=(2,))`, or `reshape(%12, shape=(2,))` where every
    summed axis has length 1 (a batch of one). Most VJPs need none of it, and then the
    instruction is the primitive's own `backward` with no Python around it. Same numpy
    calls, same order: the same bits."""
    meta, discarded = list(program.meta), set(program.discarded)
    rewritten: list[Instruction] = []
    for ins in program.instructions:
        if ins.vjp is None:
            rewritten.append(ins)
            continue
        backward, kind, posts, raw_shapes = ins.vjp
        outs: list[int] = []
        after: list[Instruction] = []
        given = iter(ins.outs)
        for post, (raw_shape, described) in zip(posts, raw_shapes, strict=True):
            if post is None:
                meta.append("")
                outs.append(len(meta) - 1)  # a slot for the None the VJP returns there; nothing reads it
                discarded.add(len(meta) - 1)
                continue
            slot = next(given)
            axes, shape, dtype = post
            if axes is None and dtype is None:
                outs.append(slot)
                continue
            meta.append(described)  # the raw gradient, before its shape work
            raw = len(meta) - 1
            outs.append(raw)
            params = ", ".join(
                ([f"axes={axes}", f"shape={shape}"] if axes is not None else [])
                + ([f"dtype={np.dtype(dtype)}"] if dtype is not None else [])
            )
            if axes is not None and all(raw_shape[a] == 1 for a in axes):
                # Summing axes of length 1 adds nothing: the same values, reshaped (a view, no copy).
                axes = None
                params = ", ".join([f"shape={shape}"] + ([f"dtype={np.dtype(dtype)}"] if dtype is not None else []))
                label = "reshape"
            else:
                label = "sum_to" if axes is not None else "astype"
            work = _shape_work(axes, shape, dtype)
            after.append(Instruction(label, work, (raw,), (slot,), params, backward=True, single=True))
        # `backward` itself: the generated code unpacks a tuple or list, or takes a single gradient as is
        unwrapped = Instruction(ins.label, backward, ins.ins, tuple(outs), ins.params, ins.backward)
        unwrapped.single = kind == "single"
        rewritten.append(unwrapped)
        rewritten.extend(after)
    return dataclasses.replace(
        program, instructions=rewritten, meta=meta, size=len(meta), discarded=discarded, _straight=None
    )


def _shape_work(axes: tuple[int, ...] | None, shape: tuple[int, ...], dtype: Any) -> Any:
    if axes is None:

        def reshape(value: Any) -> Any:
            value = value.reshape(shape)
            return value if dtype is None else value.astype(dtype)

        return reshape

    def sum_to(value: Any) -> Any:
        value = value.sum(axis=axes, keepdims=True).reshape(shape)
        return value if dtype is None else value.astype(dtype)

    return sum_to


def release(program: Program) -> Program:
    """After each instruction, free every slot that no later instruction, `.grad` write or fn's result
    reads: `%9 = tanh.vjp(ctx%4, %8)` is followed by `free %8, ctx%4`.

    A replay holds each slot in a local variable; left alone, every array the step made (each
    gradient term, each forward's ctx with the arrays it saved for its VJP) would stay alive
    until the replay returns, and the peak would be the sum of them all. The eager walk drops
    a node once its VJP has run; here the same is decided once, from the listing: a slot's
    last reader is known. Freeing only drops the program's reference (an array another slot
    or the caller still holds lives on: slots may alias, a VJP may return its input), so no
    value changes. A slot nothing reads at all (a ctx whose VJP dead_code removed) goes
    right after the instruction that made it."""
    kept = program.results()
    last: dict[int, int] = {}  # slot -> index of the last instruction that reads or makes it
    for index, ins in enumerate(program.instructions):
        for slot in (*ins.ins, *ins.outs):
            last[slot] = index
    frees: dict[int, list[int]] = {}
    for slot, index in last.items():
        if slot not in kept and slot not in program.discarded:  # a discarded slot holds the VJP's None
            frees.setdefault(index, []).append(slot)
    rewritten = [ins.freeing(tuple(sorted(frees.get(k, ())))) for k, ins in enumerate(program.instructions)]
    return dataclasses.replace(program, instructions=rewritten, _straight=None)


# run in this order on every new recording; release last, once instructions stop moving
PASSES = (dead_code, stacked_products, add_in_place, unwrap_vjps, batched_matmuls, batched_elementwise, release)
