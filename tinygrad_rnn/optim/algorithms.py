"""algorithms.py — SGD, Adam, AdamW, RMSprop, Adagrad: one `_update` each. Read after optimizer.py.

The update rules are PyTorch's, written out in each class docstring with
g = p.grad, t = the step count (1 on the first step), and all operations
elementwise. As in PyTorch, weight decay is L2 added to the gradient
(g <- g + weight_decay * p), except in AdamW, which decays the parameter itself;
`maximize=True` negates g first.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .optimizer import Optimizer, ParamsArg, _check_number, _require


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum (PyTorch's rule).

    g <- g + weight_decay * p
    b <- g                                  on the first step (no dampening)
    b <- momentum * b + (1 - dampening) * g  afterwards
    g <- g + momentum * b   if nesterov,   else  g <- b      (only when momentum != 0)
    p <- p - lr * g
    """

    _state_names = frozenset({"momentum_buffer"})

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        for key in ("lr", "momentum", "weight_decay"):
            _check_number("SGD", group, key)
        _check_number("SGD", group, "dampening", -math.inf)
        _require(
            "SGD",
            not group["nesterov"] or (group["momentum"] > 0 and group["dampening"] == 0),
            "nesterov momentum requires momentum > 0 and dampening = 0",
        )

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> Any:
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            buf = grad.copy() if buf is None else momentum * buf + (1 - group["dampening"]) * grad
            state["momentum_buffer"] = buf
            grad = grad + momentum * buf if group["nesterov"] else buf
        return param - group["lr"] * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's rule (L2 weight decay, not AdamW's decoupled one).

    g <- g + weight_decay * p
    m <- beta1 * m + (1 - beta1) * g
    v <- beta2 * v + (1 - beta2) * g^2
    v_max <- max(v_max, v)  and use v_max instead of v below   (amsgrad only)
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    _state_names = frozenset({"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"})

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize
        )
        super().__init__(params, defaults)

    # AdamW sets this: weight decay shrinks the parameter instead of joining the gradient.
    _decoupled_weight_decay = False

    def _validate(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        for key in ("lr", "eps", "weight_decay"):
            _check_number(name, group, key)
        betas = group["betas"]
        _require(name, isinstance(betas, tuple) and len(betas) == 2, f"betas must be a pair, got {betas!r}")
        for i, beta in enumerate(betas):
            _check_number(name, {f"betas[{i}]": beta}, f"betas[{i}]", 0.0, 1.0)

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> Any:
        beta1, beta2 = group["betas"]
        if group["weight_decay"] != 0:
            if self._decoupled_weight_decay:
                param = param * (1 - group["lr"] * group["weight_decay"])
            else:
                grad = grad + group["weight_decay"] * param
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        t = state["step"]
        state["exp_avg"] = beta1 * state["exp_avg"] + (1 - beta1) * grad
        state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * grad * grad
        second = state["exp_avg_sq"]
        if group["amsgrad"]:
            # setdefault: amsgrad may have been switched on after the first step
            state["max_exp_avg_sq"] = np.maximum(state.setdefault("max_exp_avg_sq", np.zeros_like(param)), second)
            second = state["max_exp_avg_sq"]
        denom = np.sqrt(second) / math.sqrt(1 - beta2**t) + group["eps"]
        return param - group["lr"] / (1 - beta1**t) * state["exp_avg"] / denom


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter), PyTorch's rule: Adam with decoupled weight decay.

    p <- p * (1 - lr * weight_decay)      (the decay never enters m or v)
    m <- beta1 * m + (1 - beta1) * g
    v <- beta2 * v + (1 - beta2) * g^2
    v_max <- max(v_max, v)  and use v_max instead of v below   (amsgrad only)
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The default weight_decay is 1e-2, PyTorch's; Adam's is 0.
    """

    _decoupled_weight_decay = True

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


class RMSprop(Optimizer):
    """RMSprop (Hinton), PyTorch's rule.

    g <- g + weight_decay * p
    v <- alpha * v + (1 - alpha) * g^2
    a <- alpha * a + (1 - alpha) * g;   d = sqrt(v - a^2) + eps      (centered)
                                        d = sqrt(v) + eps            (otherwise)
    b <- momentum * b + g / d;  p <- p - lr * b                      (momentum > 0; b starts at 0)
    p <- p - lr * g / d                                              (otherwise)
    """

    _state_names = frozenset({"step", "square_avg", "grad_avg", "momentum_buffer"})

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        for key in ("lr", "alpha", "eps", "weight_decay", "momentum"):
            _check_number("RMSprop", group, key)

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> Any:
        alpha = group["alpha"]
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        if not state:
            state.update(step=0, square_avg=np.zeros_like(param))
        state["step"] += 1
        state["square_avg"] = alpha * state["square_avg"] + (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = alpha * state.get("grad_avg", np.zeros_like(param)) + (1 - alpha) * grad
            state["grad_avg"] = grad_avg
            denom = np.sqrt(state["square_avg"] - grad_avg * grad_avg) + group["eps"]
        else:
            denom = np.sqrt(state["square_avg"]) + group["eps"]
        if group["momentum"] > 0:
            buf = group["momentum"] * state.get("momentum_buffer", np.zeros_like(param)) + grad / denom
            state["momentum_buffer"] = buf
            return param - group["lr"] * buf
        return param - group["lr"] * grad / denom


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), PyTorch's rule.

    g <- g + weight_decay * p
    s <- s + g^2                        (s starts at initial_accumulator_value)
    p <- p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)
    """

    _state_names = frozenset({"step", "sum"})

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults)
        # PyTorch creates the accumulator at construction, so it is in the state dict before any step.
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = {"step": 0, "sum": np.full_like(p.data, group["initial_accumulator_value"])}

    def _validate(self, group: dict[str, Any]) -> None:
        for key in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            _check_number("Adagrad", group, key)

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> Any:
        if not state:  # a group added after construction
            state.update(step=0, sum=np.full_like(param, group["initial_accumulator_value"]))
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] = state["sum"] + grad * grad
        return param - clr * grad / (np.sqrt(state["sum"]) + group["eps"])
