"""passes.py — optimisations over a recorded `Program`, each a named function from program to program.

A pass may change how a program computes, never what it writes: fn's return
value and every `.grad`. Each is shown with its before/after listing in
docs/compile.md and checked by tests/test_compile.py.
"""

from __future__ import annotations

import dataclasses

from .program import Program


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


PASSES = (dead_code,)  # run in this order on every new recording
