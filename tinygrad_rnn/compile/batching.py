"""batching.py — the batched_matmuls pass: matmuls by one weight that need not wait for each other, as one.

A recurrent step multiplies each step's input by the same W_hx and each
step's state by the same W_oh. Recorded, that is T small matmuls forward and
T VJPs backward, each a numpy call too small for BLAS to run at speed. None
of the x_t (nor h_t) is computed from another matmul of its group (h_t comes
from h_{t-1} @ W_hh, a different weight), so all T can run at once:

    [y_1; ...; y_T] = [x_1; ...; x_T] @ W                      one gemm forward
    [dx_1; ...; dx_T] = [g_1; ...; g_T] @ W^T                  one gemm backward
    dL/dW = [x_1; ...; x_T]^T [g_1; ...; g_T]                  and one for the weight

The rule is about dataflow only, nothing about RNNs: the plain matmuls
`a_i @ W` that read the same slot W, with left operands of one shape, form a
group when no a_j can be reached from any of the group's outputs (the W_hh
matmuls fail this: h_t @ W_hh feeds h_{t+1}). Their VJPs form a group the same
way: no g_j may be reached from the VJPs' outputs. The batched instruction
goes where the last member was; what depends on the members' outputs and lay
between them moves after it, in its order. Where the a_i are all the pieces
of one `unbind` (the input projection), the unbind's source is used as the
stacked rows, with no copy. `F.linear`'s form, `a_i @ W^T + b` with the same
one-row `b` (a bias) in every member, is batched the same way.

The gemm over T*B rows may round differently from T gemms over B rows (BLAS
picks other kernels), and dL/dW adds the rows in step order where eager adds
the last step first: values agree with eager to float rounding, not to the bit
(see docs/compile.md for the tolerance the tests use).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np

from .program import Instruction, Program


def batched_matmuls(program: Program) -> Program:
    """Gather each group of independent `a_i @ W` (and their VJPs) into one gemm; see the module docstring.

    Runs after unwrap_vjps (it reads each VJP's outputs one per input, `_` where none is needed) and
    stacked_products, whose instruction for the weight it replaces (or the weight's chain of `add`s,
    without it); a group whose weight gradient is summed with other terms is left alone."""
    done: set[Key] = set()  # groups tried already
    while True:
        group = _next_group(program, done)
        if group is None:
            return program
        key, members = group
        done.add(key)
        rewritten = _batch(program, members)
        if rewritten is not None:
            program = rewritten


Key = tuple[int, str, bool]  # (weight slot, flags, with an addend)


def _next_group(program: Program, done: set[Key]) -> tuple[Key, list[int]] | None:
    """Matmuls `a @ W`, or `a @ W^T + c_i` with each c_i one row broadcast to all (a bias), that share W
    and the flag, with 2-D operands."""
    groups: dict[Key, list[int]] = {}
    for k, ins in enumerate(program.instructions):
        if ins.label != "matmul" or ins.params not in ("", "transpose_y=True") or len(ins.ins) not in (2, 3):
            continue
        left, weight = ins.ins[:2]
        key = (weight, ins.params, len(ins.ins) == 3)
        if key in done or _rank(program, left) != 2 or _rank(program, weight) != 2:
            continue
        if key[2] and not (_rank(program, ins.ins[2]) == 1 or program.meta[ins.ins[2]].startswith("(1, ")):
            continue  # an addend of several rows would not broadcast over the stacked rows
        groups.setdefault(key, []).append(k)
    for key, members in groups.items():
        if len(members) > 1 and len({program.meta[program.instructions[k].ins[0]] for k in members}) == 1:
            return key, members
        done.add(key)
    return None


def _rank(program: Program, slot: int) -> int:
    shape = program.meta[slot].split(")")[0]
    return 0 if shape == "(" else shape.count(",") + (0 if shape.endswith(",") else 1)


def _readers(instructions: list[Instruction]) -> dict[int, list[int]]:
    """slot -> the indices of the instructions that read it, in program order."""
    readers: dict[int, list[int]] = {}
    for k, ins in enumerate(instructions):
        for slot in ins.ins:
            readers.setdefault(slot, []).append(k)
    return readers


def _reached(instructions: list[Instruction], start: int, end: int, seeds: Iterable[int]) -> tuple[set[int], set[int]]:
    """Slots computed from `seeds` by instructions start..end, and the indices of those instructions."""
    reach, which = set(seeds), set()
    for k in range(start, end + 1):
        ins = instructions[k]
        if reach.intersection(ins.ins):
            reach.update(ins.outs)
            which.add(k)
    return reach, which


def _batch(program: Program, members: list[int]) -> Program | None:
    instructions = program.instructions
    lefts = [instructions[k].ins[0] for k in members]
    weight = instructions[members[0]].ins[1]
    addends = [instructions[k].ins[2] for k in members if len(instructions[k].ins) == 3]
    if len(set(addends)) == 1:
        addends = addends[:1]  # one bias shared by every member, added to all the rows at once
    transposed = instructions[members[0]].params == "transpose_y=True"
    outs = [instructions[k].outs[0] for k in members]
    contexts = [instructions[k].outs[1] for k in members]
    reach, _ = _reached(instructions, members[0], members[-1], [*outs, *contexts])
    if reach.intersection(lefts) or reach.intersection(addends):
        return None  # a left operand depends on an output of the group (a recurrence): not batchable

    readers = _readers(instructions)
    kept = program.results()

    vjps = [readers.get(c, []) for c in contexts]
    if all(not v for v in vjps):
        backward = None
    elif all(len(v) == 1 and instructions[v[0]].label == "matmul.vjp" for v in vjps):
        backward = _backward_group(program, [v[0] for v in vjps], readers, kept)
        if backward is None:
            return None
    else:
        return None

    source = _unbound_source(program, lefts)
    rows = (source,) if source is not None else tuple(lefts)
    run_forward = _forward(source is not None, transposed, len(addends))
    params = instructions[members[0]].params
    forward = Instruction("batched_matmul", run_forward, (*rows, weight, *addends), tuple(outs), params)
    rewritten = _reschedule(instructions, members, forward, reach)
    if backward is not None:
        vjp_members, stacked, grads, dxs, dw, dcs = backward
        wanted = [] if all(d in program.discarded for d in dxs) else dxs  # x_t from data: no dx at all
        handed = [] if all(d in program.discarded for d in dcs) else dcs
        outs_vjp = (*wanted, *(() if dw is None else (dw,)), *handed)
        run = _backward(len(grads), transposed, bool(wanted), dw is not None, bool(handed))
        vjp = Instruction("batched_matmul.vjp", run, (*grads, weight, *rows), outs_vjp, params, backward=True)
        summing = {id(instructions[k]) for k in stacked}
        rewritten = _replace_vjps(rewritten, instructions, vjp_members, vjp, summing)
    from .passes import dead_code  # dead_code lives with the other passes; batching leaves unread pieces

    return dead_code(dataclasses.replace(program, instructions=rewritten, _straight=None))


def _backward_group(
    program: Program, vjps: list[int], readers: dict[int, list[int]], kept: set[int]
) -> tuple[list[int], list[int], list[int], list[int], int | None, list[int]] | None:
    """The members' VJPs as one group, or None when one of them cannot wait for the others."""
    instructions = program.instructions
    order = sorted(vjps)
    grads = [instructions[k].ins[1] for k in vjps]
    arity = len(instructions[vjps[0]].outs)  # one gradient per input of the matmul: x, W and the addend
    if any(len(instructions[k].outs) != arity for k in vjps) or len({program.meta[g] for g in grads}) != 1:
        return None
    reach, _ = _reached(instructions, order[0], order[-1], [s for k in vjps for s in instructions[k].outs])
    if reach.intersection(grads):
        # In reverse mode the forward check implies this one; checked anyway, because moving a VJP past
        # the one that computes its input would make the replay read a slot before it is written.
        return None
    dxs = [instructions[k].outs[0] for k in vjps]
    dws = [instructions[k].outs[1] for k in vjps]
    dcs = [instructions[k].outs[2] for k in vjps] if arity == 3 else []
    if all(d in program.discarded for d in dws):
        return order, [], grads, dxs, None, dcs
    if any(d in kept for d in dws):
        return None
    summed = _summed_by(instructions, readers, dws)
    if summed is None:
        return None
    return order, summed[0], grads, dxs, summed[1], dcs


def _summed_by(
    instructions: list[Instruction], readers: dict[int, list[int]], terms: list[int]
) -> tuple[list[int], int] | None:
    """The instructions that sum exactly `terms` and nothing else, and the slot of the sum: one
    stacked_products, or (without that pass, or if MatMul's VJP hands out arrays) a chain of gradient
    `add`s, each partial sum read only by the next. The batched VJP replaces them with one gemm."""
    users = {k for t in terms for k in readers.get(t, [])}
    if any(len(readers.get(t, [])) != 1 for t in terms):
        return None
    if len(users) == 1:
        (user,) = users
        if instructions[user].label == "stacked_products" and sorted(instructions[user].ins) == sorted(terms):
            return [user], instructions[user].outs[0]
    chain: list[int] = []
    pending = set(terms)
    first = [k for k in users if set(instructions[k].ins) <= pending]
    if len(first) != 1:
        return None
    k = first[0]
    while True:
        ins = instructions[k]
        if ins.label not in ("add", "add_") or not ins.backward or len(ins.outs) != 1:
            return None  # a gradient sum of two terms (a forward add also outputs its ctx)
        chain.append(k)
        pending -= set(ins.ins)
        total = ins.outs[0]
        if not pending:
            return chain, total
        following = readers.get(total, [])
        if len(following) != 1:
            return None
        k = following[0]
        if not (set(instructions[k].ins) - {total}) <= pending:
            return None


def _unbound_source(program: Program, lefts: list[int]) -> int | None:
    """The slot that `unbind(axis=0)` split into exactly `lefts`, in order, if one did."""
    for ins in program.instructions:
        if ins.label == "unbind" and ins.params == "axis=0" and list(ins.outs[:-1]) == lefts:
            return ins.ins[0]
    return None


def _replace_vjps(
    rewritten: list[Instruction], instructions: list[Instruction], vjps: list[int], batched: Instruction, gone: set[int]
) -> list[Instruction]:
    """`rewritten` with the VJPs `vjps` (indices into `instructions`, the program before this batch) replaced
    by `batched`, what depends on their outputs between them moved after it, and the instructions whose
    ids are in `gone` (the sums the batched VJP does itself) dropped."""
    where = {id(ins): k for k, ins in enumerate(rewritten)}  # by identity: == compares every field
    positions = sorted(where[id(instructions[k])] for k in vjps)
    seeds = [slot for k in vjps for slot in instructions[k].outs]
    _, moved = _reached(rewritten, positions[0], positions[-1], seeds)
    rewritten = _reschedule(rewritten, positions, batched, None, moved)
    return [ins for ins in rewritten if id(ins) not in gone]


def _reschedule(
    instructions: list[Instruction],
    members: list[int],
    batched: Instruction,
    reach: set[int] | None,
    moved: set[int] | None = None,
) -> list[Instruction]:
    """Drop the members; put `batched` where the last one was and, after it, whatever between the first and
    the last depends on the members' outputs (it must wait for them now), keeping every other order."""
    first, last = members[0], members[-1]
    if moved is None:
        assert reach is not None
        moved = {k for k in range(first, last + 1) if reach.intersection(instructions[k].ins)}
    dropped = set(members)
    gone = dropped | moved
    between = [ins for k, ins in enumerate(instructions[first : last + 1], first) if k not in gone]
    after = [ins for k, ins in enumerate(instructions[first : last + 1], first) if k in moved and k not in dropped]
    return [*instructions[:first], *between, batched, *after, *instructions[last + 1 :]]


def _forward(from_source: bool, transposed: bool, addends: int) -> Any:
    def batched_matmul(*values: np.ndarray) -> tuple[np.ndarray, ...]:
        """y_i = a_i @ W (or a_i @ W^T + c_i) for every i: one gemm over the stacked rows, then the pieces
        (views). The rows are the unbind's source itself (no copy) or the a_i stacked (one copy)."""
        if addends:
            values, added = values[:-addends], values[-addends:]
        rows, weight = values[:-1], values[-1]
        stacked = rows[0].reshape(-1, rows[0].shape[-1]) if from_source else np.concatenate(rows)
        out = np.matmul(stacked, weight.T if transposed else weight)
        steps = rows[0].shape[0] if from_source else len(rows)
        out = out.reshape(steps, -1, out.shape[-1])
        if addends == 1:
            out = out + added[0]  # one bias for every row
        elif addends:
            out = out + np.stack([c.reshape(1, -1) for c in added])  # c_i for the rows of step i
        return tuple(out)

    return batched_matmul


def _backward(steps: int, transposed: bool, input_grads: bool, weight_grad: bool, addend_grads: bool) -> Any:
    def batched_matmul_vjp(*values: np.ndarray) -> tuple[np.ndarray, ...]:
        """dx_i = g_i W^T for every i, and dL/dW = [a_1; ...]^T [g_1; ...], each one gemm (with W^T in the
        forward: dx_i = g_i W and dL/dW = [g_1; ...]^T [a_1; ...]); dL/dc_i = g_i, as MatMul hands it on."""
        grads, weight, rows = values[:steps], values[steps], values[steps + 1 :]
        stacked = np.concatenate(grads)
        out: tuple[np.ndarray, ...] = ()
        if input_grads:
            dx = np.matmul(stacked, weight if transposed else weight.T)
            out = tuple(dx.reshape(steps, -1, dx.shape[-1]))
        if weight_grad:
            lefts = rows[0].reshape(-1, rows[0].shape[-1]) if len(rows) == 1 else np.concatenate(rows)
            out = (*out, np.dot(stacked.T, lefts) if transposed else np.dot(lefts.T, stacked))
        if addend_grads:
            out = (*out, *grads)
        return out

    return batched_matmul_vjp
