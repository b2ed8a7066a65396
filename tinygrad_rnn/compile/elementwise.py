"""elementwise.py — the batched_elementwise pass: one elementwise op over pieces of a stack, run once on the stack.

After batched_matmuls the readout of every step is one piece of one gemm's
output, yet each step still adds its bias, subtracts its target and squares
the difference on its own, forward and VJP: 3 T small numpy calls each way.
An elementwise op gives out[i] from its inputs' elements at i, so on a stack
of the pieces (one more leading axis) it gives the stack of the results:

    [y_1; ...; y_T] = f([a_1; ...; a_T], c)          one call forward
    [da_1; ...; da_T], dc_i = f.vjp(ctx, [g_1; ...; g_T])   one call backward

The rule is about dataflow only. Forward instructions of one primitive marked
`elementwise` in core/ops.py, with the same params and gradients needed, form
a group when every operand is either shared (the same slot in every member,
or constants of equal value: the 2 of `** 2`) or the i-th piece of one stack
(an `unbind(axis=0)`, a batched_matmul, or a group batched before), when no
member reaches another, and when each member's ctx is read by its VJP alone.
A shared operand must broadcast from the right (its rank at most the output's)
so that it meets the stack as it met each piece. Its gradient terms, where
they were only brought to its shape and added, are summed over the new axis
by the batched VJP (another order of addition: float rounding); otherwise
they are handed on in pieces, each what the member's VJP gave. The batched
instruction also hands on the stack itself, so that the next group (the `-`
after the `+`) starts from it with no copy. Values are those of each member,
the same numpy call on more elements, but for that sum: held to the batching
tolerance (docs/compile.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .batching import _reached, _readers, _replace_vjps, _reschedule, _summed_by
from .program import Instruction, Program

Piece = tuple[int, int, int, int | None]  # (the stack's first piece, index, pieces in the stack, slot of the stack)


def batched_elementwise(program: Program) -> Program:
    """Run each group of independent elementwise instructions (and their VJPs) once on the stacked pieces."""
    pieces = _stacks(program)
    done: set[Any] = set()
    while True:
        group = _next_group(program, pieces, done)
        if group is None:
            break
        key, members = group
        done.add(key)
        rewritten = _batch(program, members, pieces)
        if rewritten is not None:
            program = rewritten
    return _read_stacks(program, pieces)


def _stacks(program: Program) -> dict[int, Piece]:
    """Every slot that is one piece of a stack: an unbind's outputs (the stack is its input) and a
    batched_matmul's (the stack is made when needed)."""
    pieces: dict[int, Piece] = {}
    for ins in program.instructions:
        if ins.label == "unbind" and ins.params == "axis=0":
            parts, stack = ins.outs[:-1], ins.ins[0]
        elif ins.label == "batched_matmul":
            parts, stack = ins.outs, None
        else:
            continue
        _register(pieces, parts, stack)
    return pieces


def _register(pieces: dict[int, Piece], parts: Any, stack: int | None) -> None:
    for i, slot in enumerate(parts):
        pieces[slot] = (parts[0], i, len(parts), stack)


def _stacked_meta(count: int, meta: str) -> str:
    """The listing's "(T, *shape) dtype" of a stack of pieces described by `meta`."""
    shape, dtype = meta.split(") ", 1)
    return f"({count}, {shape[1:].rstrip(',')}) {dtype}" if shape != "(" else f"({count},) {dtype}"


def _read_stacks(program: Program, pieces: dict[int, Piece]) -> Program:
    """A batched VJP made before the group that computes its gradients (the VJPs run in reverse) stacks
    them at every replay; once they are the pieces of a stack, it reads the stack itself."""
    rewritten = []
    for ins in program.instructions:
        grads = ins.ins[1:]
        if getattr(ins.run, "__name__", "") == "batched_elementwise_vjp" and len(grads) > 1:
            known = [pieces.get(g) for g in grads]
            first = known[0]
            if first is not None and first[3] is not None and first[2] == len(grads):
                if all(p is not None and p[0] == first[0] and p[1] == i for i, p in enumerate(known)):
                    ins = dataclasses.replace(ins, ins=(ins.ins[0], first[3]))
        rewritten.append(ins)
    return dataclasses.replace(program, instructions=rewritten, _straight=None)


def _shape(meta: str) -> tuple[int, ...]:
    inside = meta.split(")")[0].lstrip("(")
    return tuple(int(n) for n in inside.split(",") if n.strip())


def _constant_values(program: Program) -> dict[int, Any]:
    return {slot: value for slot, value in program.constants if np.ndim(value) == 0}


def _next_group(program: Program, pieces: dict[int, Piece], done: set[Any]) -> tuple[Any, list[int]] | None:
    constants = _constant_values(program)
    groups: dict[Any, list[int]] = {}
    for k, ins in enumerate(program.instructions):
        fresh = ins.fresh
        if fresh is None or not getattr(fresh.cls, "elementwise", False) or ins.backward:
            continue
        operands: list[Any] = []
        for slot in ins.ins:
            if slot in pieces:
                stack, _, count, _ = pieces[slot]
                operands.append(("piece", stack, count))
            elif slot in constants:
                value = constants[slot]
                operands.append(("constant", np.asarray(value).dtype.str, float(value)))
            else:
                operands.append(("shared", slot))
        if not any(kind[0] == "piece" for kind in operands):
            continue
        key = (fresh.cls, ins.params, fresh.needs, program.meta[ins.outs[0]], tuple(operands))
        if key not in done:
            groups.setdefault(key, []).append(k)
    for key, members in groups.items():
        if len(members) > 1:
            return key, members
    return None


def _batch(program: Program, members: list[int], pieces: dict[int, Piece]) -> Program | None:
    instructions = program.instructions
    first = instructions[members[0]]
    out_shape = _shape(program.meta[first.outs[0]])
    index_of: list[int] = []
    for k in members:
        found = {pieces[s][1] for s in instructions[k].ins if s in pieces}
        if len(found) != 1:
            return None  # pieces of different steps in one member
        index_of.append(found.pop())
    count = next(pieces[s][2] for s in first.ins if s in pieces)
    if sorted(index_of) != list(range(count)):
        return None  # not every piece of the stack, or one twice
    members = [k for _, k in sorted(zip(index_of, members, strict=True))]  # in the stack's order
    operands: list[tuple[int, ...]] = []  # per operand: (slot,) passed as it is, or the pieces to stack
    for j, slot in enumerate(first.ins):
        if slot in pieces:
            stack = pieces[slot][3]
            if len(_shape(program.meta[slot])) != len(out_shape):
                return None  # a piece of lower rank would meet the new axis where its own first axis is
            operands.append((stack,) if stack is not None else tuple(instructions[k].ins[j] for k in members))
        else:
            if len(_shape(program.meta[slot])) > len(out_shape):
                return None  # it would broadcast against the new axis
            operands.append((slot,))
    shared = [slot not in pieces for slot in first.ins]
    order = sorted(members)
    outs = [instructions[k].outs[0] for k in members]
    contexts = [instructions[k].outs[1] for k in members]
    reach, _ = _reached(instructions, order[0], order[-1], [*outs, *contexts])
    if reach.intersection(s for k in members for s in instructions[k].ins):
        return None  # a member reads what another computes: they cannot run at once

    readers = _readers(instructions)
    if any(o in program.discarded for o in outs):
        return None
    vjps = [readers.get(c, []) for c in contexts]
    if all(not v for v in vjps):
        vjp_members: list[int] | None = None
    elif all(len(v) == 1 and instructions[v[0]].label == f"{first.label}.vjp" for v in vjps):
        vjp_members = [v[0] for v in vjps]
        if not _vjps_batchable(program, vjp_members, out_shape):
            return None
    else:
        return None

    meta = [*program.meta, _stacked_meta(count, program.meta[first.outs[0]]), ""]
    stack_slot, ctx_slot = len(meta) - 2, len(meta) - 1
    counts = [len(o) for o in operands]
    reads = tuple(s for o in operands for s in o)
    assert first.fresh is not None
    run = _forward(first.fresh.run, counts)
    forward = Instruction(f"batched_{first.label}", run, reads, (*outs, stack_slot, ctx_slot), first.params)
    rewritten = _reschedule(instructions, order, forward, reach)
    contexts_set = set(program.contexts) | {ctx_slot}
    _register(pieces, outs, stack_slot)
    if vjp_members is not None:
        rewritten, meta = _batch_vjp(program, rewritten, vjp_members, readers, ctx_slot, meta, pieces, count, shared)
    from .passes import dead_code

    return dead_code(
        dataclasses.replace(
            program, instructions=rewritten, meta=meta, size=len(meta), contexts=contexts_set, _straight=None
        )
    )


def _vjps_batchable(program: Program, vjps: list[int], out_shape: tuple[int, ...]) -> bool:
    instructions = program.instructions
    if any(instructions[k].vjp is not None for k in vjps):
        return False  # still wrapped (no unwrap_vjps): it would bring the stacked gradients to one step's shapes
    grads = [instructions[k].ins[1] for k in vjps]
    if any(len(instructions[k].ins) != 2 for k in vjps) or {program.meta[g] for g in grads} != {program.meta[grads[0]]}:
        return False
    if _shape(program.meta[grads[0]]) != out_shape:
        return False
    arity = {len(instructions[k].outs) for k in vjps}
    if len(arity) != 1:
        return False
    for j in range(arity.pop()):
        slots = [instructions[k].outs[j] for k in vjps]
        discarded = [s in program.discarded for s in slots]
        if any(discarded) and not all(discarded):
            return False
        if not discarded[0] and any(_shape(program.meta[s]) != out_shape for s in slots):
            return False  # a raw gradient not of the output's shape: its pieces would not be views of one stack
    order = sorted(vjps)
    reach, _ = _reached(instructions, order[0], order[-1], [s for k in vjps for s in instructions[k].outs])
    return not reach.intersection(grads)


def _batch_vjp(
    program: Program,
    rewritten: list[Instruction],
    vjps: list[int],
    readers: dict[int, list[int]],
    ctx_slot: int,
    meta: list[str],
    pieces: dict[int, Piece],
    count: int,
    shared: list[bool],
) -> tuple[list[Instruction], list[str]]:
    instructions = program.instructions
    grads = tuple(instructions[k].ins[1] for k in vjps)  # stacked at each replay, or the stack (_read_stacks)
    outs: list[int] = []
    wanted: list[Any] = []  # per input: None (no gradient), True (pieces and stack), ("sum", post) (shared)
    new_pieces: list[tuple[list[int], int]] = []
    summing: set[int] = set()  # ids of the instructions a shared operand's summed gradient replaces
    for j in range(len(instructions[vjps[0]].outs)):
        slots = [instructions[k].outs[j] for k in vjps]
        if slots[0] in program.discarded:
            wanted.append(None)
            continue
        total = _summed_gradient(instructions, readers, slots) if shared[j] else None
        if total is not None:
            post, replaced, slot = total
            wanted.append(("sum", post))
            outs.append(slot)
            summing |= {id(instructions[k]) for k in replaced}
            continue
        wanted.append(True)
        meta.append(_stacked_meta(count, meta[slots[0]]))
        outs.extend([*slots, len(meta) - 1])
        new_pieces.append((slots, len(meta) - 1))
    first = instructions[vjps[0]]
    run = _backward(first.run, first.single, wanted)
    vjp = Instruction(f"batched_{first.label}", run, (ctx_slot, *grads), tuple(outs), first.params, True)
    rewritten = _replace_vjps(rewritten, instructions, vjps, vjp, summing)
    for slots, stack_slot in new_pieces:
        _register(pieces, slots, stack_slot)
    return rewritten, meta


def _summed_gradient(
    instructions: list[Instruction], readers: dict[int, list[int]], raws: list[int]
) -> tuple[Any, list[int], int] | None:
    """A shared operand's gradient: each member's raw term brought to its shape by one post (sum_to, reshape
    or astype, the same in all), then the terms summed by a chain of adds (or a stacked_products) and nothing
    else. Then the batched VJP sums the stack over the new axis, applies the post once, and replaces them all
    (the posts, the sum): (the post, the instructions replaced, the slot of the sum). None otherwise."""
    summed = _summed_by(instructions, readers, raws)
    if summed is not None:
        return None, summed[0], summed[1]  # of the operand's shape already: no post
    posts = [readers.get(r, []) for r in raws]
    if any(len(p) != 1 for p in posts):
        return None
    first = instructions[posts[0][0]]
    if first.label not in ("sum_to", "reshape", "astype") or any(
        (instructions[p[0]].label, instructions[p[0]].params) != (first.label, first.params) for p in posts
    ):
        return None
    summed = _summed_by(instructions, readers, [instructions[p[0]].outs[0] for p in posts])
    if summed is None:
        return None
    return first.run, [p[0] for p in posts] + summed[0], summed[1]


def _forward(run: Any, counts: list[int]) -> Any:
    def batched_elementwise(*values: Any) -> tuple[Any, ...]:
        """The op once on the stacked operands (stacked here when no stack holds them yet); its pieces are
        views of the result, handed on with the result and the ctx its VJP reads."""
        stacked, at = [], 0
        for n in counts:
            stacked.append(values[at] if n == 1 else np.stack(values[at : at + n]))
            at += n
        out, ctx = run(*stacked)
        return (*out, out, ctx)

    return batched_elementwise


def _backward(backward: Any, single: bool, wanted: list[Any]) -> Any:
    def batched_elementwise_vjp(ctx: Any, *values: Any) -> tuple[Any, ...]:
        """The VJP once on the stacked gradients; each wanted gradient handed on as pieces and as the stack, or
        (a shared operand's) summed."""
        grad = values[0] if len(values) == 1 else np.stack(values)  # the stack, or its pieces
        got = backward(ctx, grad)
        raws = (got,) if single else got
        out: list[Any] = []
        for raw, want in zip(raws, wanted, strict=True):
            if want is None:
                continue
            if raw.shape != grad.shape:
                raw = np.broadcast_to(raw, grad.shape)
            if want is True:
                out.extend(raw)
                out.append(raw)
            else:  # a shared operand's: its terms summed over the steps, then brought to its shape
                total = raw.sum(axis=0)
                out.append(total if want[1] is None else want[1](total))
        return tuple(out)

    return batched_elementwise_vjp
