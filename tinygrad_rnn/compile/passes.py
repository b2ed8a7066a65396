"""passes.py — optimisations over a recorded `Program`, each a named function from program to program.

A pass may change how a program computes, never what it writes: fn's return
value and every `.grad`. Each is shown with its before/after listing in
docs/compile.md and checked by tests/test_compile.py.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import numpy as np

from .batching import batched_matmuls
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
    live = {slot for slot, _ in program.grad_writes}
    result = program.result
    live |= set(result) if isinstance(result, tuple) else set() if result is None else {result}
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
    result = program.result
    kept = {slot for slot, _ in program.grad_writes}
    kept |= set(result) if isinstance(result, tuple) else set() if result is None else {result}
    sums = {ins.outs[0] for ins in program.instructions if ins.run is add_terms or ins.run is _add_into}
    rewritten = []
    for ins in program.instructions:
        if ins.run is add_terms:  # a sum of two gradient terms (not the forward op of the same name)
            total, (buffer, term) = ins.outs[0], ins.ins
            ours = buffer in sums and reads[buffer] == 1 and buffer not in kept and buffer != term
            if ours and program.meta[buffer] == program.meta[total]:
                ins = Instruction("add_", _add_into, ins.ins, ins.outs, backward=ins.backward)
        rewritten.append(ins)
    return dataclasses.replace(program, instructions=rewritten, _straight=None)


def _add_into(buffer: Any, term: Any) -> tuple[Any]:
    buffer += term
    return (buffer,)


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
            after.append(Instruction(label, _shape_work(axes, shape, dtype), (raw,), (slot,), params, backward=True))
        if kind == "single":
            run: Any = _one(backward)
        else:
            run = backward  # returns a tuple or list, unpacked by the generated code
        rewritten.append(Instruction(ins.label, run, ins.ins, tuple(outs), ins.params, backward=ins.backward))
        rewritten.extend(after)
    return dataclasses.replace(
        program, instructions=rewritten, meta=meta, size=len(meta), discarded=discarded, _straight=None
    )


def _one(backward: Any) -> Any:
    def run(*values: Any) -> tuple[Any]:
        return (backward(*values),)

    return run


def _shape_work(axes: tuple[int, ...] | None, shape: tuple[int, ...], dtype: Any) -> Any:
    if axes is None:

        def reshape(value: Any) -> tuple[Any]:
            value = value.reshape(shape)
            return (value if dtype is None else value.astype(dtype),)

        return reshape

    def sum_to(value: Any) -> tuple[Any]:
        value = value.sum(axis=axes, keepdims=True).reshape(shape)
        return (value if dtype is None else value.astype(dtype),)

    return sum_to


# run in this order on every new recording
PASSES = (dead_code, stacked_products, add_in_place, unwrap_vjps, batched_matmuls)
