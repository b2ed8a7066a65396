"""mode.py — what the engine is told from outside: grad mode, scope labels, observers. Read after tensor.py.

Three small pieces of global state, each set for the length of a `with` block:

- grad mode (`no_grad`, `enable_grad`, `set_grad_enabled`): whether operations
  on tensors that require grad are recorded at all;
- scopes (`scope(module="rnn.l0", step=3)`): labels every node recorded inside
  the block carries, so the study tools can fold an unrolled graph by step;
- observers (`observe(forward=..., backward=...)`): callbacks that see each node
  as it is recorded and each VJP as it runs. This is the engine's public hook
  for study tools (tinygrad_rnn.inspect uses nothing else); the engine never
  depends on them, and pays one test of an empty list per node when none is set.

This module imports nothing else of the package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ContextDecorator, contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for annotations only: this module needs neither class at run time
    from .function import Function
    from .tensor import Tensor

# ---------------------------------------------------------------- grad mode


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are being recorded."""
    return _GradMode.enabled


class _GradModeBlock(ContextDecorator):
    """Set the grad mode inside a `with` block or a decorated function, and restore it after."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._previous: list[bool] = []  # a stack, so one decorator instance can re-enter

    def __enter__(self) -> None:
        self._previous.append(_GradMode.enabled)
        _GradMode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self._previous.pop()


class no_grad(_GradModeBlock):
    """Record nothing: `with tg.no_grad(): ...` or `@tg.no_grad()`."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(_GradModeBlock):
    """Record again inside a `no_grad` region."""

    def __init__(self) -> None:
        super().__init__(True)


class set_grad_enabled(_GradModeBlock):
    """Switch recording on or off: at once when called on its own (`tg.set_grad_enabled(False)`),
    or only inside a `with` block or a decorated function, as in PyTorch."""

    def __init__(self, mode: bool) -> None:
        super().__init__(mode)
        self._before_call = _GradMode.enabled
        self._fresh = True  # the first `with` must restore the mode from before this call, not after it
        _GradMode.enabled = self.mode

    def __call__(self, func: Any) -> Any:  # a decorator: the mode applies only inside func
        _GradMode.enabled = self._before_call
        self._fresh = False
        return super().__call__(func)

    def __enter__(self) -> None:
        self._previous.append(self._before_call if self._fresh else _GradMode.enabled)
        self._fresh = False
        _GradMode.enabled = self.mode


# ---------------------------------------------------------------- scopes
# nn layers label what they record (`module="rnn.l0", step=3`), so study tools
# can fold an unrolled graph by time step. A node keeps the labels in force
# when it was recorded; costs one attribute store per node.

_no_tags: dict[str, Any] = {}


class _Scope:
    tags: dict[str, Any] = _no_tags


class scope:
    """Label every node recorded inside the block, e.g. `with scope(module="rnn", step=t):`.

    A class rather than a @contextmanager generator: layers enter one per time step, and
    this costs about half as much (0.9 against 1.6 us here)."""

    __slots__ = ("_previous", "tags")

    def __init__(self, **tags: Any) -> None:
        self.tags = tags

    def __enter__(self) -> None:
        self._previous = _Scope.tags
        _Scope.tags = {**self._previous, **self.tags}

    def __exit__(self, *exc: object) -> None:
        _Scope.tags = self._previous


# ---------------------------------------------------------------- observers

ForwardObserver = Callable[["Function", "Tensor"], None]
BackwardObserver = Callable[["Function", "tuple[Tensor, ...]", "tuple[Tensor | None, ...]"], None]

forward_observers: list[ForwardObserver] = []  # called as observe(node, output) for each output recorded
backward_observers: list[BackwardObserver] = []  # called as observe(node, grad_outs, grads_in) after each VJP


@contextmanager
def observe(forward: ForwardObserver | None = None, backward: BackwardObserver | None = None) -> Iterator[None]:
    """Subscribe observers for the length of a block.

    `forward(node, out)` runs when `node` is recorded, once per output `out`.
    `backward(node, grad_outs, grads_in)` runs after the node's VJP: one
    gradient per output (dL/d out) and one per input (dL/d input, None where
    none flows), always as Tensors, whatever form the pass uses inside.

    >>> import tinygrad_rnn as tg
    >>> from tinygrad_rnn.core.mode import observe
    >>> seen = []
    >>> x = tg.Tensor([1.0, 2.0], requires_grad=True)
    >>> with observe(forward=lambda node, out: seen.append(node.name)):
    ...     y = (x * x).sum()
    >>> seen
    ['mul', 'sum']
    """
    if forward is not None:
        forward_observers.append(forward)
    if backward is not None:
        backward_observers.append(backward)
    try:
        yield
    finally:
        if forward is not None:
            forward_observers.remove(forward)
        if backward is not None:
            backward_observers.remove(backward)
