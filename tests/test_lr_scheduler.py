"""Tests of tinygrad_rnn.optim.lr_scheduler.

Each schedule's learning rates are compared, epoch by epoch, with its closed form
written here from the definition (base_lr * gamma ** (t // step_size), ...), never
by calling the scheduler's own rules. ReduceLROnPlateau is checked against
sequences worked out by hand in the comments. Then: the optimizer really uses the
scheduled rate, state_dict round trips continue identically (through a file too),
and bad arguments and bad state dicts give named errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor
from tinygrad_rnn.core.errors import ArgumentError, CheckpointError, DTypeError
from tinygrad_rnn.io.serialization import load, save, subdict
from tinygrad_rnn.nn.module import Parameter
from tinygrad_rnn.optim import SGD, Adam, Optimizer
from tinygrad_rnn.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LRScheduler,
    MultiStepLR,
    ReduceLROnPlateau,
    StepLR,
)

BASE_LRS = [0.5, 0.03]  # two parameter groups, so per-group bookkeeping is exercised


def two_group_sgd(lrs: list[float] = BASE_LRS) -> SGD:
    groups = [{"params": [Parameter(np.zeros(2))], "lr": lr} for lr in lrs]
    return SGD(groups, lr=1.0)


def lrs_over(scheduler: LRScheduler, epochs: int) -> list[list[float]]:
    """The rates of every group at epoch 0 (after construction) and after each of `epochs` steps."""
    seen = [[g["lr"] for g in scheduler.optimizer.param_groups]]
    for _ in range(epochs):
        scheduler.step()
        seen.append([g["lr"] for g in scheduler.optimizer.param_groups])
        assert scheduler.get_last_lr() == seen[-1]
    return seen


def assert_schedule(got: list[list[float]], closed_form: Callable[[float, int], float]) -> None:
    for t, rates in enumerate(got):
        want = [closed_form(base, t) for base in BASE_LRS]
        np.testing.assert_allclose(rates, want, rtol=1e-12, atol=1e-15, err_msg=f"epoch {t}")


# ---------------------------------------------------------------- exact sequences


def test_step_lr_follows_its_closed_form() -> None:
    got = lrs_over(StepLR(two_group_sgd(), step_size=3, gamma=0.5), 10)
    assert_schedule(got, lambda base, t: base * 0.5 ** (t // 3))
    assert got[2] == BASE_LRS and got[3] != BASE_LRS


def test_multi_step_lr_follows_its_closed_form_and_counts_repeated_milestones() -> None:
    milestones = [5, 2, 7, 5]  # unsorted, and 5 twice: gamma applies twice at epoch 5, as in PyTorch
    got = lrs_over(MultiStepLR(two_group_sgd(), milestones, gamma=0.1), 9)
    assert_schedule(got, lambda base, t: base * 0.1 ** sum(m <= t for m in milestones))
    np.testing.assert_allclose(got[5][0], 0.5 * 0.1**3, rtol=1e-12)


def test_exponential_lr_follows_its_closed_form() -> None:
    got = lrs_over(ExponentialLR(two_group_sgd(), gamma=0.9), 12)
    assert_schedule(got, lambda base, t: base * 0.9**t)


@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_annealing_lr_follows_the_cosine_over_several_periods(eta_min: float) -> None:
    period = 5
    got = lrs_over(CosineAnnealingLR(two_group_sgd(), T_max=period, eta_min=eta_min), 3 * period + 2)

    def cosine(base: float, t: int) -> float:
        return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / period)) / 2

    assert_schedule(got, cosine)
    assert got[period][0] == pytest.approx(eta_min, abs=1e-15)


def test_cosine_annealing_uses_the_recursive_form_so_an_outside_change_carries_on() -> None:
    # PyTorch's step() computes lr_t from lr_(t-1); with eta_min = 0 that makes each step a ratio of
    # cosines, so halving the rate by hand at epoch 2 halves the rest of the schedule.
    opt = two_group_sgd()
    sched = CosineAnnealingLR(opt, T_max=8)
    sched.step()
    sched.step()
    for group in opt.param_groups:
        group["lr"] = group["lr"] / 2
    for t in range(3, 8):
        sched.step()
        want = [base / 2 * (1 + math.cos(math.pi * t / 8)) / 2 for base in BASE_LRS]
        np.testing.assert_allclose(sched.get_last_lr(), want, rtol=1e-12)


def test_lambda_lr_takes_one_function_or_one_per_group() -> None:
    got = lrs_over(LambdaLR(two_group_sgd(), lr_lambda=lambda t: 1 / (t + 1)), 5)
    assert_schedule(got, lambda base, t: base / (t + 1))
    got = lrs_over(LambdaLR(two_group_sgd(), lr_lambda=[lambda t: 0.5**t, lambda t: t + 1.0]), 4)
    for t, rates in enumerate(got):
        assert rates == pytest.approx([BASE_LRS[0] * 0.5**t, BASE_LRS[1] * (t + 1)], rel=1e-12)


def test_step_with_an_epoch_jumps_to_the_closed_form_and_warns() -> None:
    sched = StepLR(two_group_sgd(), step_size=2, gamma=0.1)
    with pytest.warns(UserWarning, match="deprecated"):
        sched.step(5)
    assert sched.last_epoch == 5
    assert sched.get_last_lr() == pytest.approx([b * 0.1**2 for b in BASE_LRS], rel=1e-12)


CLOSED_FORMS: dict[str, Any] = {
    "step": (
        st.fixed_dictionaries({"step_size": st.integers(1, 6), "gamma": st.floats(0.05, 2.0)}),
        StepLR,
        lambda base, t, k: base * k["gamma"] ** (t // k["step_size"]),
    ),
    "multistep": (
        st.fixed_dictionaries({"milestones": st.lists(st.integers(0, 20), max_size=5), "gamma": st.floats(0.05, 2.0)}),
        MultiStepLR,
        lambda base, t, k: base * k["gamma"] ** sum(m <= t for m in k["milestones"]),
    ),
    "exponential": (
        st.fixed_dictionaries({"gamma": st.floats(0.5, 1.5)}),
        ExponentialLR,
        lambda base, t, k: base * k["gamma"] ** t,
    ),
    "cosine": (
        st.fixed_dictionaries({"T_max": st.integers(1, 8), "eta_min": st.floats(0.0, 0.02)}),
        CosineAnnealingLR,
        lambda base, t, k: k["eta_min"] + (base - k["eta_min"]) * (1 + math.cos(math.pi * t / k["T_max"])) / 2,
    ),
}


@pytest.mark.parametrize("kind", sorted(CLOSED_FORMS))
@given(data=st.data())
def test_random_settings_follow_the_closed_form(kind: str, data: st.DataObject) -> None:
    settings_strategy, cls, closed_form = CLOSED_FORMS[kind]
    kwargs = data.draw(settings_strategy, label="settings")
    got = lrs_over(cls(two_group_sgd(), **kwargs), 20)
    for t, rates in enumerate(got):
        want = [closed_form(base, t, kwargs) for base in BASE_LRS]
        np.testing.assert_allclose(rates, want, rtol=1e-10, atol=1e-14, err_msg=f"{kind} {kwargs} epoch {t}")


# ---------------------------------------------------------------- ReduceLROnPlateau, worked by hand


def plateau_rates(metrics: list[float], **kwargs: Any) -> list[float]:
    opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    sched = ReduceLROnPlateau(opt, **kwargs)
    out = []
    for m in metrics:
        sched.step(m)
        out.append(opt.param_groups[0]["lr"])
        assert sched.get_last_lr() == [out[-1]]
    return out


def test_plateau_min_rel_with_patience_cooldown_and_min_lr() -> None:
    # improvement means m < best * 0.9.  e1 best 10 | e2 9.5 bad 1 | e3 9.2 bad 2 > 1: lr .5, cooldown
    # e4 8 < 9 best 8, cooldown ends | e5 bad 1 | e6 bad 2: lr .25, cooldown | e7 bad ignored (cooldown)
    # e8 bad 1 | e9 bad 2: max(.125, min_lr .2) = .2 | e10 cooldown | e11 bad 1 | e12 bad 2: .2 stays .2
    metrics = [10, 9.5, 9.2, 8, 8, 8, 8, 8, 8, 8, 8, 8]
    got = plateau_rates(metrics, factor=0.5, patience=1, threshold=0.1, cooldown=1, min_lr=0.2)
    assert got == [1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2]


def test_plateau_max_abs_with_no_patience() -> None:
    # improvement means m > best + 0.5.  e1 best 1 | e2 best 2 | e3 2.4 bad: lr .1 | e4 best 3
    # e5 3.4 bad: lr .01 | e6 3.6 best 3.6
    got = plateau_rates([1, 2, 2.4, 3, 3.4, 3.6], mode="max", threshold=0.5, threshold_mode="abs", patience=0)
    assert got == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01], rel=1e-15)


def test_plateau_max_rel_and_min_abs_thresholds() -> None:
    # max/rel: better means m > best * 1.1.  e1 best 10 | e2 10.5 bad: lr .1 | e3 11.5 > 11 best
    assert plateau_rates([10, 10.5, 11.5], mode="max", patience=0, threshold=0.1) == pytest.approx([1, 0.1, 0.1])
    # min/abs: better means m < best - 1.  e1 best 5 | e2 4.5 bad: lr .1 | e3 3.9 best | e4 3.0 bad: lr .01
    got = plateau_rates([5, 4.5, 3.9, 3.0], threshold=1.0, threshold_mode="abs", patience=0)
    assert got == pytest.approx([1, 0.1, 0.1, 0.01])


@given(
    patience=st.integers(0, 4),
    cooldown=st.integers(0, 3),
    factor=st.floats(0.3, 0.9),
    mode=st.sampled_from(["min", "max"]),
)
def test_plateau_on_a_flat_metric_reduces_on_a_fixed_rhythm(
    patience: int, cooldown: int, factor: float, mode: str
) -> None:
    # Epoch 1 sets best; each later epoch is bad. The first reduction comes when the count of bad
    # epochs exceeds patience (epoch patience + 2); after each one, `cooldown` epochs count nothing
    # and patience + 1 bad epochs are needed again. So reductions happen at epochs
    # patience + 2 + k (cooldown + patience + 1), k = 0, 1, ...
    epochs = 25
    got = plateau_rates([3.0] * epochs, mode=mode, patience=patience, cooldown=cooldown, factor=factor, eps=0.0)
    period = cooldown + patience + 1
    for e in range(1, epochs + 1):
        reductions = 0 if e < patience + 2 else 1 + (e - patience - 2) // period
        assert got[e - 1] == pytest.approx(factor**reductions, rel=1e-12), f"epoch {e}"


def test_plateau_skips_a_reduction_smaller_than_eps() -> None:
    # 1.0 -> max(0.1, min_lr 0.95) changes the rate by 0.05 < eps 0.1, so it stays 1.0
    assert plateau_rates([3, 3, 3], patience=0, min_lr=0.95, eps=0.1) == [1, 1, 1]


def test_plateau_takes_per_group_min_lr_and_a_tensor_metric() -> None:
    opt = two_group_sgd([1.0, 1.0])
    sched = ReduceLROnPlateau(opt, patience=0, factor=0.5, min_lr=[0.0, 0.75])
    for m in [2.0, 2.0, 2.0]:
        sched.step(Tensor(m))
    assert sched.get_last_lr() == [0.25, 0.75]


# ---------------------------------------------------------------- the optimizer side


def test_the_optimizer_steps_with_the_scheduled_rate() -> None:
    p = Parameter(np.array([0.0]))
    opt = SGD([p], lr=0.1)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    moved = []
    for _ in range(3):
        p.grad = Tensor(np.array([1.0]))
        before = p.data.copy()
        opt.step()
        sched.step()
        moved.append(float(before[0] - p.data[0]))
    assert moved == pytest.approx([0.1, 0.05, 0.025], rel=1e-15)


def test_initial_lr_is_recorded_once_as_in_pytorch() -> None:
    opt = two_group_sgd()
    ExponentialLR(opt, gamma=0.5).step()
    assert [g["initial_lr"] for g in opt.param_groups] == BASE_LRS
    second = StepLR(opt, step_size=10)  # a second scheduler keeps the first record (setdefault)
    assert second.base_lrs == BASE_LRS
    assert [g["lr"] for g in opt.param_groups] == [b * 0.5 for b in BASE_LRS]


def test_pytorch_spelling_through_the_package() -> None:
    opt = tg.optim.AdamW([Parameter(np.zeros(1))])
    sched = tg.optim.lr_scheduler.StepLR(opt, step_size=1)
    sched.step()
    assert sched.get_last_lr() == [pytest.approx(1e-4)]


# ---------------------------------------------------------------- state dicts

MAKERS: list[tuple[str, Callable[[Optimizer], Any]]] = [
    ("step", lambda o: StepLR(o, step_size=3, gamma=0.5)),
    ("multistep", lambda o: MultiStepLR(o, [2, 8, 8], gamma=0.5)),
    ("exponential", lambda o: ExponentialLR(o, gamma=0.8)),
    ("cosine", lambda o: CosineAnnealingLR(o, T_max=4, eta_min=0.001)),
    ("lambda", lambda o: LambdaLR(o, lambda t: 1 / (1 + t))),
    ("plateau", lambda o: ReduceLROnPlateau(o, patience=1, cooldown=1, factor=0.5)),
]
METRICS = [5, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3]


def advance(sched: Any, epochs: range) -> list[list[float]]:
    out = []
    for e in epochs:
        sched.step(METRICS[e]) if isinstance(sched, ReduceLROnPlateau) else sched.step()
        out.append(sched.get_last_lr())
    return out


@pytest.mark.parametrize(("name", "make"), MAKERS, ids=[n for n, _ in MAKERS])
def test_state_dict_round_trip_mid_schedule_continues_identically(
    name: str, make: Callable[[Optimizer], Any], tmp_path: Path
) -> None:
    opt = two_group_sgd()
    sched = make(opt)
    advance(sched, range(5))
    path = tmp_path / "ckpt.npz"
    save({"optim": opt, "sched": sched}, path)  # a scheduler is saved as its state_dict()
    whole = advance(sched, range(5, 12))

    ckpt = load(path)
    resumed_opt = two_group_sgd([9.0, 9.0])  # wrong rates on purpose: the state must restore them
    resumed_opt.load_state_dict(subdict(ckpt, "optim"))
    resumed = make(resumed_opt)
    resumed.load_state_dict(subdict(ckpt, "sched"))
    assert advance(resumed, range(5, 12)) == whole
    assert len({tuple(r) for r in whole}) > 1, f"{name}: the schedule should change over these epochs"


def test_resuming_with_last_epoch_needs_initial_lr_and_keeps_the_rate() -> None:
    with pytest.raises(ArgumentError, match=r"StepLR: last_epoch=4 resumes .* param_groups\[0\] has no 'initial_lr'"):
        StepLR(two_group_sgd(), step_size=2, last_epoch=4)
    opt = two_group_sgd()
    ExponentialLR(opt, gamma=0.5)
    for g in opt.param_groups:
        g["lr"] = g["initial_lr"] * 0.5**4
    sched = ExponentialLR(opt, gamma=0.5, last_epoch=4)
    assert sched.last_epoch == 5 and sched.get_last_lr() == [b * 0.5**4 for b in BASE_LRS]
    sched.step()
    assert sched.get_last_lr() == [b * 0.5**5 for b in BASE_LRS]


def test_lambda_functions_are_not_in_the_state_dict() -> None:
    sched = LambdaLR(two_group_sgd(), lambda t: 0.5)
    state = sched.state_dict()
    assert set(state) == {"base_lrs", "last_epoch", "_step_count", "_last_lr"}
    assert all(isinstance(v, np.ndarray) and v.dtype.kind != "O" for v in state.values())


def test_bad_state_dicts_are_named_and_change_nothing() -> None:
    sched = StepLR(two_group_sgd(), step_size=3)
    sched.step()
    before = {k: v.copy() for k, v in sched.state_dict().items()}
    good = sched.state_dict()
    cases = [
        ({**good, "gama": np.array(0.1)}, r"unexpected entry 'gama'"),
        ({k: v for k, v in good.items() if k != "last_epoch"}, r"missing entry 'last_epoch'"),
        ({**good, "base_lrs": np.array([0.1, 0.2, 0.3])}, r"'base_lrs' must hold one number per parameter group"),
        ({**good, "last_epoch": np.array(2.5)}, r"'last_epoch' must be a 0-d integer array, got float64 \(\)"),
    ]
    for bad, pattern in cases:
        with pytest.raises(CheckpointError, match=r"StepLR.load_state_dict: .*" + pattern):
            sched.load_state_dict(bad)
        for key, value in sched.state_dict().items():
            np.testing.assert_array_equal(value, before[key])
    plateau = ReduceLROnPlateau(two_group_sgd())
    with pytest.raises(CheckpointError, match=r"mode must be 'min' or 'max', got 'median'"):
        plateau.load_state_dict({**plateau.state_dict(), "mode": np.array("median")})
    assert plateau.mode == "min"


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda o: StepLR(o, step_size=0), ArgumentError, r"StepLR: invalid step_size 0: must be at least 1"),
        (lambda o: StepLR(o, step_size=2.5), DTypeError, r"StepLR: step_size must be an integer, got float"),
        (lambda o: StepLR([o], step_size=2), DTypeError, r"StepLR: expected an Optimizer, got list"),
        (lambda o: MultiStepLR(o, [2, -1]), ArgumentError, r"MultiStepLR: invalid each milestone -1"),
        (lambda o: ExponentialLR(o, gamma="0.5"), DTypeError, r"ExponentialLR: gamma must be a number, got str"),
        (lambda o: CosineAnnealingLR(o, T_max=0), ArgumentError, r"CosineAnnealingLR: invalid T_max 0"),
        (lambda o: LambdaLR(o, [lambda t: 1.0]), ArgumentError, r"LambdaLR: expected 2 lr_lambda .* got 1"),
        (lambda o: LambdaLR(o, 0.5), DTypeError, r"LambdaLR: lr_lambda 0 must be a function of the epoch"),
        (lambda o: ReduceLROnPlateau(o, factor=1.0), ArgumentError, r"ReduceLROnPlateau: invalid factor 1.0"),
        (lambda o: ReduceLROnPlateau(o, mode="median"), ArgumentError, r"mode must be 'min' or 'max'"),
        (lambda o: ReduceLROnPlateau(o, threshold_mode="x"), ArgumentError, r"threshold_mode must be 'rel' or"),
        (lambda o: ReduceLROnPlateau(o, min_lr=[0.1]), ArgumentError, r"expected 2 min_lr \(one per parameter"),
        (lambda o: ReduceLROnPlateau(o).step(np.ones(3)), ArgumentError, r"metrics must be one number, got .* \(3,\)"),
    ],
)
def test_bad_arguments_are_named(make: Callable[[Optimizer], Any], error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        make(two_group_sgd())


def test_an_optimizer_state_dict_with_initial_lr_loads_before_the_scheduler_exists() -> None:
    opt = Adam([Parameter(np.zeros(1))], lr=0.1)
    StepLR(opt, step_size=1, gamma=0.5).step()
    fresh = Adam([Parameter(np.zeros(1))], lr=0.1)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0]["initial_lr"] == 0.1 and fresh.param_groups[0]["lr"] == 0.05
    assert StepLR(fresh, step_size=1, gamma=0.5, last_epoch=2).base_lrs == [0.1]


def test_a_group_added_after_the_scheduler_is_named_not_left_unscheduled() -> None:
    opt = two_group_sgd()
    sched = ExponentialLR(opt, gamma=0.5)
    opt.add_param_group({"params": [Parameter(np.zeros(1))], "lr": 0.2})
    with pytest.raises(
        ArgumentError, match=r"ExponentialLR.step: the optimizer has 3 parameter groups, .* built for 2"
    ):
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == [*BASE_LRS, 0.2]
