"""Tests of tinygrad_rnn.optim.

Each optimizer is compared, step by step, with a reference written here from the
published equations in their textbook form (bias-corrected moments m_hat, v_hat
for Adam, and so on), on a tiny quadratic whose gradient is computed by hand.
Then: training reduces a loss, state_dict round trips continue bit-for-bit,
steps rebind `p.data` instead of writing into it, and every bad argument gives a
named error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_rnn import Tensor
from tinygrad_rnn.core.errors import ArgumentError, CheckpointError, DTypeError, GradientError, ShapeError
from tinygrad_rnn.nn.module import Module, Parameter
from tinygrad_rnn.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

# ---------------------------------------------------------------- the problem: a tiny quadratic

TARGETS = [np.array([[1.0, -2.0], [0.5, 3.0]]), np.array([-1.0, 2.0, 0.25])]
CURVATURE = [np.array([[1.0, 2.0], [0.5, 4.0]]), np.array([3.0, 1.0, 0.2])]
START = [np.array([[0.3, 0.1], [-0.7, 1.0]]), np.array([0.9, -0.4, 1.2])]


class Quadratic(Module):
    """L(w, b) = sum c_w (w - w*)^2 + sum c_b (b - b*)^2: gradients 2 c (p - p*)."""

    def __init__(self, dtype: Any = np.float64) -> None:
        self.w = Parameter(START[0], dtype=dtype)
        self.b = Parameter(START[1], dtype=dtype)

    def forward(self) -> Tensor:
        total = Tensor(0.0)
        for p, c, t in zip(self.parameters(), CURVATURE, TARGETS, strict=True):
            d = p - Tensor(t)
            total = total + (Tensor(c) * d * d).sum()
        return total


def hand_grads(params: list[np.ndarray]) -> list[np.ndarray]:
    return [2 * c * (p - t) for p, c, t in zip(params, CURVATURE, TARGETS, strict=True)]


def run(opt: Optimizer, model: Quadratic, steps: int) -> list[list[np.ndarray]]:
    history = []
    for _ in range(steps):
        opt.zero_grad()
        model().backward()
        opt.step()
        history.append([p.data.copy() for p in model.parameters()])
    return history


# ---------------------------------------------------------------- references, from the equations


def ref_sgd(steps: int, lr: float, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    ps = [s.copy() for s in START]
    velocity: list[np.ndarray | None] = [None, None]
    out = []
    for _ in range(steps):
        for i, g in enumerate(hand_grads(ps)):
            d = (-g if maximize else g) + weight_decay * ps[i]
            if momentum:
                v = velocity[i]
                velocity[i] = d if v is None else momentum * v + (1 - dampening) * d
                d = d + momentum * velocity[i] if nesterov else velocity[i]
            ps[i] = ps[i] - lr * d
        out.append([p.copy() for p in ps])
    return out


def ref_adam(steps: int, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False):
    b1, b2 = betas
    ps = [s.copy() for s in START]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    vmax = [np.zeros_like(p) for p in ps]
    out = []
    for t in range(1, steps + 1):
        for i, g in enumerate(hand_grads(ps)):
            g = (-g if maximize else g) + weight_decay * ps[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g**2
            vmax[i] = np.maximum(vmax[i], v[i])
            m_hat = m[i] / (1 - b1**t)
            v_hat = (vmax[i] if amsgrad else v[i]) / (1 - b2**t)
            ps[i] = ps[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append([p.copy() for p in ps])
    return out


def ref_adamw(steps: int, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False):
    """Loshchilov & Hutter's decoupled decay: the parameter shrinks by lr * weight_decay * p, outside m and v."""
    b1, b2 = betas
    ps = [s.copy() for s in START]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    vmax = [np.zeros_like(p) for p in ps]
    out = []
    for t in range(1, steps + 1):
        for i, g in enumerate(hand_grads(ps)):
            g = -g if maximize else g
            decayed = ps[i] - lr * weight_decay * ps[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g**2
            vmax[i] = np.maximum(vmax[i], v[i])  # PyTorch keeps the max of v itself, then bias-corrects it
            m_hat = m[i] / (1 - b1**t)
            v_hat = (vmax[i] if amsgrad else v[i]) / (1 - b2**t)
            ps[i] = decayed - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append([p.copy() for p in ps])
    return out


def ref_rmsprop(
    steps: int, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, maximize=False
):
    ps = [s.copy() for s in START]
    sq = [np.zeros_like(p) for p in ps]
    avg = [np.zeros_like(p) for p in ps]
    buf = [np.zeros_like(p) for p in ps]
    out = []
    for _ in range(steps):
        for i, g in enumerate(hand_grads(ps)):
            g = (-g if maximize else g) + weight_decay * ps[i]
            sq[i] = alpha * sq[i] + (1 - alpha) * g**2
            avg[i] = alpha * avg[i] + (1 - alpha) * g
            variance = sq[i] - avg[i] ** 2 if centered else sq[i]
            step = g / (np.sqrt(variance) + eps)
            if momentum > 0:
                buf[i] = momentum * buf[i] + step
                step = buf[i]
            ps[i] = ps[i] - lr * step
        out.append([p.copy() for p in ps])
    return out


def ref_adagrad(
    steps: int, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, maximize=False
):
    ps = [s.copy() for s in START]
    acc = [np.full_like(p, initial_accumulator_value) for p in ps]
    out = []
    for t in range(1, steps + 1):
        for i, g in enumerate(hand_grads(ps)):
            g = (-g if maximize else g) + weight_decay * ps[i]
            acc[i] = acc[i] + g**2
            ps[i] = ps[i] - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(acc[i]) + eps)
        out.append([p.copy() for p in ps])
    return out


CASES: list[tuple[type[Optimizer], Callable[..., Any], dict[str, Any]]] = [
    (SGD, ref_sgd, dict(lr=0.1)),
    (SGD, ref_sgd, dict(lr=0.05, momentum=0.9)),
    (SGD, ref_sgd, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.1)),
    (SGD, ref_sgd, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (SGD, ref_sgd, dict(lr=0.01, momentum=0.5, maximize=True)),
    (Adam, ref_adam, dict()),
    (Adam, ref_adam, dict(lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    (Adam, ref_adam, dict(lr=0.2, betas=(0.5, 0.7), amsgrad=True)),
    (Adam, ref_adam, dict(lr=0.01, maximize=True, amsgrad=True)),
    (AdamW, ref_adamw, dict()),
    (AdamW, ref_adamw, dict(lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.5)),
    (AdamW, ref_adamw, dict(lr=0.2, betas=(0.5, 0.7), weight_decay=0.1, amsgrad=True)),
    (AdamW, ref_adamw, dict(lr=0.01, weight_decay=0.0, maximize=True, amsgrad=True)),
    (RMSprop, ref_rmsprop, dict()),
    (RMSprop, ref_rmsprop, dict(lr=0.01, alpha=0.9, momentum=0.8)),
    (RMSprop, ref_rmsprop, dict(lr=0.01, alpha=0.8, centered=True, weight_decay=0.05)),
    (RMSprop, ref_rmsprop, dict(lr=0.005, centered=True, momentum=0.5, eps=1e-4, maximize=True)),
    (Adagrad, ref_adagrad, dict()),
    (Adagrad, ref_adagrad, dict(lr=0.1, lr_decay=0.5, weight_decay=0.2)),
    (Adagrad, ref_adagrad, dict(lr=0.3, initial_accumulator_value=0.5, eps=1e-3, maximize=True)),
]


@pytest.mark.parametrize(("cls", "reference", "kwargs"), CASES, ids=lambda x: getattr(x, "__name__", str(x)))
def test_steps_match_the_equations(cls: type[Optimizer], reference: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    model = Quadratic()
    got = run(cls(model.parameters(), **kwargs), model, steps=6)
    want = reference(6, **kwargs)
    for step, (g, w) in enumerate(zip(got, want, strict=True)):
        for p, q in zip(g, w, strict=True):
            np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-13, err_msg=f"{cls.__name__} step {step + 1}")
    assert not np.allclose(got[-1][0], START[0]), "the parameters should have moved"


unit = st.floats(0.0, 0.95)
HYPER = {
    SGD: st.fixed_dictionaries(
        {
            "lr": st.floats(0.0, 0.2),
            "momentum": unit,
            "dampening": unit,
            "weight_decay": unit,
            "maximize": st.booleans(),
        }
    ),
    Adam: st.fixed_dictionaries(
        {
            "lr": st.floats(0.0, 0.5),
            "betas": st.tuples(unit, unit),
            "eps": st.floats(1e-8, 1.0),
            "weight_decay": unit,
            "amsgrad": st.booleans(),
        }
    ),
    AdamW: st.fixed_dictionaries(
        {
            "lr": st.floats(0.0, 0.5),
            "betas": st.tuples(unit, unit),
            "eps": st.floats(1e-8, 1.0),
            "weight_decay": unit,
            "amsgrad": st.booleans(),
        }
    ),
    RMSprop: st.fixed_dictionaries(
        {
            "lr": st.floats(0.0, 0.1),
            # alpha -> 0 makes the centered variance v - a^2 = alpha (1 - alpha) g^2 a cancellation whose
            # rounding (and so its sign, and a NaN from sqrt) differs between two correct implementations.
            "alpha": st.floats(0.01, 0.999),
            "eps": st.floats(1e-3, 1.0),  # centered: v - a^2 may be ~0, so keep the denominator away from it
            "momentum": unit,
            "centered": st.booleans(),
        }
    ),
    Adagrad: st.fixed_dictionaries(
        {"lr": st.floats(0.0, 0.5), "lr_decay": unit, "initial_accumulator_value": unit, "eps": st.floats(1e-10, 1.0)}
    ),
}
REFERENCE = {SGD: ref_sgd, Adam: ref_adam, AdamW: ref_adamw, RMSprop: ref_rmsprop, Adagrad: ref_adagrad}


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop, Adagrad], ids=lambda c: c.__name__)
@settings(max_examples=15)
@given(data=st.data())
def test_random_hyper_parameters_match_the_equations(cls: type[Optimizer], data: st.DataObject) -> None:
    kwargs = data.draw(HYPER[cls], label="hyper-parameters")
    model = Quadratic()
    got = run(cls(model.parameters(), **kwargs), model, steps=3)[-1]
    want = REFERENCE[cls](3, **kwargs)[-1]
    for p, q in zip(got, want, strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)


def test_parameter_groups_use_their_own_hyper_parameters() -> None:
    model = Quadratic()
    opt = SGD([{"params": [model.w], "lr": 0.1}, {"params": [model.b], "momentum": 0.9}], lr=0.05)
    got = run(opt, model, steps=4)
    fast, slow = ref_sgd(4, lr=0.1), ref_sgd(4, lr=0.05, momentum=0.9)
    np.testing.assert_allclose(got[-1][0], fast[-1][0], rtol=1e-12)
    np.testing.assert_allclose(got[-1][1], slow[-1][1], rtol=1e-12)
    assert opt.param_groups[0]["momentum"] == 0.0 and opt.param_groups[1]["lr"] == 0.05


def test_changing_lr_in_a_group_takes_effect() -> None:
    model = Quadratic()
    opt = SGD(model.parameters(), lr=0.1)
    run(opt, model, steps=1)
    opt.param_groups[0]["lr"] = 0.0
    before = [p.data.copy() for p in model.parameters()]
    run(opt, model, steps=1)
    for p, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, b)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (SGD, dict(lr=0.05, momentum=0.9)),
        (Adam, dict(lr=0.1)),
        (AdamW, dict(lr=0.1, weight_decay=1e-3)),
        (RMSprop, dict(lr=0.02)),
        (Adagrad, dict(lr=0.5)),
    ],
)
def test_training_reduces_the_loss(cls: type[Optimizer], kwargs: dict[str, Any]) -> None:
    model = Quadratic()
    opt = cls(model.parameters(), **kwargs)
    first = model().item()
    run(opt, model, steps=150)
    assert model().item() < 0.01 * first


# ---------------------------------------------------------------- mechanics


def test_step_rebinds_parameters_and_old_graphs_keep_their_values() -> None:
    model = Quadratic()
    opt = Adam(model.parameters(), lr=0.1)
    old = model.w.data
    snapshot = old.copy()
    recorded = (model.w * model.w).sum()  # a graph recorded before the step
    model().backward()
    opt.step()
    assert model.w.data is not old
    np.testing.assert_array_equal(old, snapshot)  # the old array object is untouched
    model.w.grad = None
    recorded.backward()
    np.testing.assert_allclose(model.w.grad, 2 * snapshot)  # the graph saw the values before the step


def test_step_skips_parameters_without_grad_and_keeps_dtype() -> None:
    model = Quadratic(dtype=np.float32)
    opt = RMSprop(model.parameters(), momentum=0.5)
    model().backward()
    model.b.grad = None
    before_b = model.b.data
    opt.step()
    assert model.b.data is before_b and model.b not in opt.state
    assert model.w.data.dtype == np.float32
    assert all(v.dtype == np.float32 for k, v in opt.state[model.w].items() if k != "step")


def test_zero_grad() -> None:
    model = Quadratic()
    opt = SGD(model.parameters(), lr=0.1)
    model().backward()
    opt.zero_grad()
    assert model.w.grad is None and model.b.grad is None
    model().backward()
    old = model.w.grad
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(model.w.grad, np.zeros((2, 2)))
    assert model.w.grad is not old and np.any(old != 0)


def test_step_with_closure_returns_the_loss() -> None:
    model = Quadratic()
    opt = SGD(model.parameters(), lr=0.1)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = model()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(
        sum(float((c * (s - t) ** 2).sum()) for c, s, t in zip(CURVATURE, START, TARGETS, strict=True))
    )
    np.testing.assert_allclose(model.w.data, ref_sgd(1, lr=0.1)[0][0])


def test_grad_of_the_wrong_shape_is_named() -> None:
    model = Quadratic()
    opt = SGD(model.parameters(), lr=0.1)
    model.w.grad = np.zeros(3)
    with pytest.raises(
        ShapeError, match=r"SGD.step: parameter 0 of group 0 has shape \(2, 2\) but its grad has shape \(3,\)"
    ):
        opt.step()


@pytest.mark.parametrize("cls", [SGD, Adam, RMSprop, Adagrad])
def test_a_bad_grad_anywhere_leaves_every_parameter_and_the_state_unchanged(cls: type) -> None:
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    opt = cls([a, b], lr=0.1)
    a.grad, b.grad = np.ones(3), np.ones(5)  # the second one is wrong
    before = opt.state_dict()
    with pytest.raises(ShapeError, match=r"parameter 1 of group 0 has shape \(2,\)"):
        opt.step()
    np.testing.assert_array_equal(a.data, np.ones(3))
    after = opt.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)


def test_passing_the_module_instead_of_its_parameters_is_named() -> None:
    with pytest.raises(ArgumentError, match=r"SGD: pass model.parameters\(\), not the Quadratic itself"):
        SGD(Quadratic(), lr=0.1)  # type: ignore[arg-type]


# ---------------------------------------------------------------- state_dict


def make(cls: type[Optimizer], kwargs: dict[str, Any]) -> tuple[Quadratic, Optimizer]:
    model = Quadratic()
    return model, cls([{"params": [model.w]}, {"params": [model.b], "lr": kwargs.get("lr", 0.01) / 2}], **kwargs)


ROUND_TRIP = [
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (Adam, dict(lr=0.05, amsgrad=True, betas=(0.8, 0.95))),
    (AdamW, dict(lr=0.05, amsgrad=True, weight_decay=0.3)),
    (RMSprop, dict(lr=0.01, centered=True, momentum=0.3)),
    (Adagrad, dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.2)),
]


@pytest.mark.parametrize(("cls", "kwargs"), ROUND_TRIP, ids=lambda x: getattr(x, "__name__", ""))
def test_state_dict_round_trip_continues_identically(cls: type[Optimizer], kwargs: dict[str, Any]) -> None:
    model, opt = make(cls, kwargs)
    run(opt, model, steps=3)
    state = opt.state_dict()
    for key, value in state.items():
        assert isinstance(value, np.ndarray) and value.dtype.kind != "O", key
    params = model.state_dict()

    fresh_model, fresh = make(cls, {k: (v * 3 if k == "lr" else v) for k, v in kwargs.items()})  # other lr
    fresh_model.load_state_dict(params)
    fresh.load_state_dict(state)
    assert fresh.param_groups[1]["lr"] == opt.param_groups[1]["lr"]
    original = run(opt, model, steps=3)
    resumed = run(fresh, fresh_model, steps=3)
    for a, b in zip(original, resumed, strict=True):
        for p, q in zip(a, b, strict=True):
            np.testing.assert_array_equal(p, q)


def test_state_dict_is_a_copy() -> None:
    model, opt = make(Adam, dict(lr=0.1))
    run(opt, model, steps=1)
    state = opt.state_dict()
    saved = state["state.0.exp_avg"].copy()
    run(opt, model, steps=2)
    np.testing.assert_array_equal(state["state.0.exp_avg"], saved)


def test_load_state_dict_accepts_the_nested_pytorch_shape() -> None:
    model, opt = make(Adam, dict(lr=0.1))
    run(opt, model, steps=2)
    flat = opt.state_dict()
    nested: dict[str, Any] = {"optimizer": "Adam", "state": {}, "param_groups": [{}, {}]}
    for key, value in flat.items():
        parts = key.split(".")
        if parts[0] == "state":
            nested["state"].setdefault(int(parts[1]), {})[parts[2]] = value
        elif parts[0] == "param_groups":
            nested["param_groups"][int(parts[1])][parts[2]] = value.item() if value.ndim == 0 else value
    other_model, other = make(Adam, dict(lr=0.3))
    other_model.load_state_dict(model.state_dict())
    other.load_state_dict(nested)
    np.testing.assert_array_equal(run(other, other_model, 1)[0][0], run(opt, model, 1)[0][0])


def test_bad_state_dicts_are_named_and_change_nothing() -> None:
    model, opt = make(Adam, dict(lr=0.1))
    run(opt, model, steps=1)
    good = opt.state_dict()
    before = opt.state_dict()

    def fails(state: dict[str, Any], pattern: str) -> None:
        with pytest.raises(CheckpointError, match=pattern) as info:
            opt.load_state_dict(state)
        assert isinstance(info.value, ValueError)
        after = opt.state_dict()
        assert after.keys() == before.keys()
        for k in after:
            np.testing.assert_array_equal(after[k], before[k])

    fails({**good, "optimizer": np.array("SGD")}, "saved by SGD, not Adam")
    fails({**good, "state.0.exp_avg": np.zeros(3)}, r"state.0.exp_avg has float64 shape \(3,\), expected .* \(2, 2\)")
    fails({**good, "state.0.momentum_buffer": np.zeros((2, 2))}, "unexpected entry state.0.momentum_buffer")
    fails({k: v for k, v in good.items() if k != "param_groups.1.eps"}, "missing entry param_groups.1.eps")
    fails({**good, "param_groups.2.lr": np.array(0.1)}, "param_groups.2.lr: the optimizer has 2 parameter group")
    fails({**good, "param_groups.0.params": np.array([1])}, r"param_groups.0.params is \[1\]")
    fails({**good, "param_groups.0.betas": np.array([0.9, 0.9, 0.9])}, "param_groups.0.betas")
    fails({**good, "param_groups.0.lr": np.array(-1.0)}, "param_groups.0: Adam: invalid lr -1.0")
    fails({**good, "state.0.step": np.array(1.5)}, "state.0.step must be a 0-d integer array")
    fails({k: v for k, v in good.items() if k != "optimizer"}, "missing entry 'optimizer'")


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("make_opt", "pattern"),
    [
        (lambda ps: SGD(ps, lr=-0.1), r"SGD: invalid lr -0.1"),
        (lambda ps: SGD(ps, momentum=-1), r"SGD: invalid momentum -1"),
        (lambda ps: SGD(ps, weight_decay=-1e-3), r"SGD: invalid weight_decay"),
        (lambda ps: SGD(ps, nesterov=True), r"nesterov momentum requires momentum > 0 and dampening = 0"),
        (lambda ps: SGD(ps, momentum=0.9, dampening=0.1, nesterov=True), r"nesterov"),
        (lambda ps: Adam(ps, lr=-1), r"Adam: invalid lr -1"),
        (lambda ps: Adam(ps, betas=(1.0, 0.9)), r"Adam: invalid betas\[0\] 1.0: must be in \[0.0, 1.0\)"),
        (lambda ps: Adam(ps, betas=(0.9, -0.1)), r"invalid betas\[1\]"),
        (lambda ps: Adam(ps, betas=(0.9,)), r"betas must be a pair"),
        (lambda ps: Adam(ps, eps=-1e-8), r"Adam: invalid eps"),
        (lambda ps: AdamW(ps, weight_decay=-0.1), r"AdamW: invalid weight_decay -0.1"),
        (lambda ps: AdamW(ps, betas=(0.9, 1.5)), r"AdamW: invalid betas\[1\] 1.5"),
        (lambda ps: RMSprop(ps, alpha=-0.5), r"RMSprop: invalid alpha"),
        (lambda ps: RMSprop(ps, momentum=-0.5), r"RMSprop: invalid momentum"),
        (lambda ps: Adagrad(ps, lr_decay=-1), r"Adagrad: invalid lr_decay"),
        (lambda ps: Adagrad(ps, initial_accumulator_value=-1), r"Adagrad: invalid initial_accumulator_value"),
        (lambda ps: SGD(ps, lr=math.nan), r"SGD: invalid lr nan"),
        (lambda ps: SGD([]), r"SGD: got an empty parameter list"),
        (lambda ps: SGD([{"params": ps, "lrr": 0.1}]), r"unknown hyper-parameter\(s\) \['lrr'\]"),
        (lambda ps: SGD([{"lr": 0.1}]), r"a parameter group needs a 'params' entry"),
        (lambda ps: SGD([{"params": ps[:1]}, {"params": ps}]), r"parameter 0 of group 1 appears more than once"),
    ],
)
def test_bad_hyper_parameters_are_named(make_opt: Callable[[list[Parameter]], Optimizer], pattern: str) -> None:
    with pytest.raises(ArgumentError, match=pattern) as info:
        make_opt(Quadratic().parameters())
    assert isinstance(info.value, ValueError)


def test_bad_parameters_are_named() -> None:
    with pytest.raises(DTypeError, match="SGD: lr must be a number, got str"):
        SGD(Quadratic().parameters(), lr="0.1")  # type: ignore[arg-type]
    with pytest.raises(DTypeError, match="parameter 0 of group 0 is a ndarray, not a Tensor"):
        Adam([np.zeros(3)])  # type: ignore[list-item]
    with pytest.raises(DTypeError, match="parameter 0 of group 0 has dtype int64"):
        Adam([Tensor(np.arange(3))])
    w = Parameter(np.ones(2))
    with pytest.raises(GradientError, match="parameter 0 of group 0 is not a leaf"):
        Adam([w * 2])


def test_adamw_decouples_weight_decay_from_the_moments() -> None:
    # With a zero gradient Adam's L2 decay enters m and v, while AdamW's only shrinks p: p <- p (1 - lr wd).
    p = Parameter(np.array([2.0, -4.0]))
    opt = AdamW([p], lr=0.1)
    assert opt.defaults["weight_decay"] == 1e-2  # PyTorch's default, where Adam's is 0
    p.grad = Tensor(np.zeros(2))
    opt.step()
    np.testing.assert_array_equal(p.data, np.array([2.0, -4.0]) * (1 - 0.1 * 1e-2))
    np.testing.assert_array_equal(opt.state[p]["exp_avg"], np.zeros(2))
    with pytest.raises(CheckpointError, match="saved by Adam, not AdamW"):
        opt.load_state_dict(Adam([Parameter(np.zeros(2))]).state_dict())
