"""stacking.py — the stacked_products pass: a shared weight's T gradient terms as one product.

A weight W used by T matmuls (one per time step) gets T gradient terms
A_t^T G_t (A_t: the step's left operand, G_t: its output's gradient). The
eager walk keeps each as a deferred `ProductSum` (core/products.py) and adds
them as they arrive; the sum is computed when the gradient is read, as one
product over the stacked rows:

    dL/dW = sum_t A_t^T G_t = [A_1; ...; A_T]^T [G_1; ...; G_T]

As recorded, that is T-1 `add` instructions, each joining lists of factors,
and an `asarray` that stacks them and multiplies. This pass writes the same
work as the one instruction it is: `%171 = stacked_products(%120, %143, %166)`
reads the T terms and returns dL/dW. It joins them with `ProductSum`'s own
`+=`, in the order they arrived (multiplied out past every `ROWS_PER_FLUSH`
stacked rows), so the bits are eager's.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import numpy as np

from .program import Instruction, Program
from .record import add_terms


def stacked_products(program: Program) -> Program:
    """Replace each chain `add(add(t1, t2), t3) ... asarray` of matmul gradient terms by one
    `stacked_products(t1, ..., tT)` where dL/dW = [A_1; ...; A_T]^T [G_1; ...; G_T].

    A chain qualifies only as the backward walk builds it for one tensor: left-deep, every
    term a fresh `ProductSum` a VJP returned, every partial sum read by the next add alone.
    Anything else (a dense term, a partial sum read twice) is left as recorded."""
    reads = Counter(i for ins in program.instructions for i in ins.ins)
    reads.update(program.results())  # read once more, after the program: never a partial sum to fold
    made_by = {out: k for k, ins in enumerate(program.instructions) for out in ins.outs}

    def fresh_term(slot: int) -> bool:
        """A ProductSum of one product, straight from a VJP, read once (by its add)."""
        maker = made_by.get(slot)
        return (
            slot in program.products
            and reads[slot] == 1
            and maker is not None
            and program.instructions[maker].label.endswith(".vjp")
        )

    replaced: dict[int, Instruction | None] = {}  # instruction index -> its replacement (None: removed)
    for k, ins in enumerate(program.instructions):
        if ins.label != "asarray" or ins.ins[0] not in program.products:
            continue
        terms: list[int] = []
        adds: list[int] = []
        total = ins.ins[0]
        while (maker := made_by.get(total)) is not None and program.instructions[maker].run is add_terms:
            partial, term = program.instructions[maker].ins
            if reads[total] != 1 or not fresh_term(term) or partial == term:
                break
            terms.append(term)
            adds.append(maker)
            total = partial
        else:
            if adds and fresh_term(total):
                terms.append(total)
                terms.reverse()
                for a in adds:
                    replaced[a] = None
                replaced[k] = Instruction("stacked_products", _stack, tuple(terms), ins.outs, backward=True)
    if not replaced:
        return program
    rewritten = [replaced.get(k, ins) for k, ins in enumerate(program.instructions)]
    return dataclasses.replace(program, instructions=[i for i in rewritten if i is not None], _straight=None)


def _stack(*terms: Any) -> tuple[np.ndarray]:
    """sum_t A_t^T G_t exactly as the eager walk computes it: the terms joined in order into one
    ProductSum (its `+=` stacks their factors and multiplies out past ROWS_PER_FLUSH rows), made an array."""
    total = terms[0] + terms[1]  # a new sum: the first term stays as its VJP made it
    for term in terms[2:]:
        total += term
    return (np.asarray(total),)
