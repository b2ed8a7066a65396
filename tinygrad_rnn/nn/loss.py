"""nn/loss.py — the losses of functional.py as modules, PyTorch's `nn.MSELoss(reduction=...)` spelling.

Each holds its settings and calls the function; `loss_fn(input, target)` is
`functional.<name>(input, target, ...)`. The ones that take a `mask` in
functional.py take it here too, as a keyword of the call.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import ArgumentError
from ..core.tensor import Tensor
from . import functional as F
from .losses import _check_reduction
from .module import Module

_DEPRECATED = ("size_average", "reduce")  # PyTorch's old spelling of `reduction`


def _refuse(owner: str, keywords: dict[str, Any]) -> None:
    for name in keywords:
        if name in _DEPRECATED:
            raise ArgumentError(f"{owner}: {name} is not supported; use reduction='mean', 'sum' or 'none'")
        raise ArgumentError(f"{owner}: unexpected keyword argument {name!r}")


class _Loss(Module):
    """The `reduction` every loss takes."""

    def __init__(self, reduction: str, unsupported: dict[str, Any]) -> None:
        _refuse(type(self).__name__, unsupported)
        _check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """mean((input - target)^2) (or 'sum', or 'none'); `mse_loss`."""

    def __init__(self, reduction: str = "mean", **unsupported: Any) -> None:
        super().__init__(reduction, unsupported)

    def forward(self, input: Tensor, target: Any, mask: Any = None) -> Tensor:
        return F.mse_loss(input, target, mask=mask, reduction=self.reduction)


class L1Loss(_Loss):
    """mean(|input - target|); `l1_loss`."""

    def __init__(self, reduction: str = "mean", **unsupported: Any) -> None:
        super().__init__(reduction, unsupported)

    def forward(self, input: Tensor, target: Any, mask: Any = None) -> Tensor:
        return F.l1_loss(input, target, mask=mask, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """-log softmax(logits)[target], with class weights, ignore_index and label smoothing; `cross_entropy`
    (which says where the class axis is for inputs of 3 or more dimensions)."""

    def __init__(
        self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0,
        dim: int | None = None, **unsupported: Any,
    ) -> None:  # fmt: skip
        super().__init__(reduction, unsupported)
        self.weight, self.ignore_index, self.label_smoothing, self.dim = weight, ignore_index, label_smoothing, dim

    def forward(self, input: Tensor, target: Any, mask: Any = None) -> Tensor:
        return F.cross_entropy(
            input, target, mask, self.reduction, weight=self.weight, ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing, dim=self.dim,
        )  # fmt: skip


class NLLLoss(_Loss):
    """-input[target] for log-probabilities; `nll_loss`."""

    def __init__(
        self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean", dim: int | None = None,
        **unsupported: Any,
    ) -> None:  # fmt: skip
        super().__init__(reduction, unsupported)
        self.weight, self.ignore_index, self.dim = weight, ignore_index, dim

    def forward(self, input: Tensor, target: Any, mask: Any = None) -> Tensor:
        return F.nll_loss(
            input, target, self.weight, mask=mask, ignore_index=self.ignore_index, reduction=self.reduction,
            dim=self.dim,
        )  # fmt: skip


class BCEWithLogitsLoss(_Loss):
    """-[p y log σ(x) + (1 - y) log(1 - σ(x))] from logits; `binary_cross_entropy_with_logits`."""

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None, **unsupported: Any) -> None:
        super().__init__(reduction, unsupported)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, input: Tensor, target: Any, mask: Any = None) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight, mask=mask
        )
