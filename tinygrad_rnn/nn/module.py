"""nn/module.py — Parameter and Module: the bookkeeping every layer shares. No autodiff here.

A Module finds its parameters by walking its own attributes in the order they
were assigned: a `Parameter` is a parameter, a `Module` (or a list of them in a
`ModuleList`) is a submodule whose parameters get a dotted prefix. Nothing is
registered by hand, so a layer never writes `parameters()` itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..core.errors import DTypeError, ShapeError, fmt_shape
from ..core.tensor import Tensor


class Parameter(Tensor):
    """A Tensor owned by a Module and updated by an optimizer; requires grad by default."""

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter(" + super().__repr__()[len("Tensor(") :]


def as_input(owner: object, name: str, value: Any, dtype: np.dtype[Any]) -> Tensor:
    """A layer's input as a Tensor of the layer's dtype; `owner` (a name, or the Module) is formatted
    into the message only if there is an error.

    Integer or boolean data is converted. Floating data of another precision is an
    error rather than a silent promotion (float32 weights with a float64 input would
    otherwise compute, and return, float64).
    """
    tensor = value if isinstance(value, Tensor) else Tensor(value)
    if tensor.dtype == dtype:
        return tensor
    if tensor.dtype.kind in "fc":
        raise DTypeError(
            f"{owner}: {name} has dtype {tensor.dtype} but the layer's parameters are {dtype}; "
            f"convert it (e.g. x.astype(np.{dtype})) or build the layer with dtype=np.{tensor.dtype}"
        )
    return tensor.astype(dtype)


class Module:
    """Base class of layers. Subclasses set Parameters and Modules as attributes and define `forward`."""

    training: bool = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} defines no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ the attribute walk

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every submodule, depth first, with dotted names ("" for self)."""
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            yield name, module
            children = [(f"{name}.{child}" if name else child, m) for child, m in module.named_children()]
            stack.extend(reversed(children))

    def named_parameters(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs: a module's own in assignment order, then each submodule's.

        A shared (tied) Parameter appears once, under its first name, unless
        `remove_duplicate=False` (as in PyTorch)."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and (not remove_duplicate or id(value) not in seen):
                    seen.add(id(value))
                    yield (f"{module_name}.{name}" if module_name else name), value

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Forget every parameter's accumulated gradient (sets `.grad` to None, as PyTorch's default)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter name -> a copy of its values, in named_parameters order. A tied Parameter is stored
        under each of its names, as PyTorch does, so the file also loads into an untied model."""
        return {name: p.data.copy() for name, p in self.named_parameters(remove_duplicate=False)}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy values in by name. Every entry is checked before any is assigned, so a bad
        dict leaves the module unchanged. Raises ValueError naming each problem."""
        params = dict(self.named_parameters(remove_duplicate=False))
        problems = []
        missing = [name for name in params if name not in state]
        unexpected = [name for name in state if name not in params]
        if strict and missing:
            problems.append(f"missing entries: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected entries: {', '.join(unexpected)}")
        converted = {}
        for name, value in state.items():
            if name not in params:
                continue
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            param = params[name]
            if array.shape != param.shape:
                problems.append(f"{name} has shape {fmt_shape(array.shape)}, expected {fmt_shape(param.shape)}")
            elif array.dtype.kind not in "biuf":
                problems.append(f"{name} has non-numeric dtype {array.dtype}")
            else:
                converted[name] = np.array(array, dtype=param.dtype, copy=True)
        if problems:
            raise ShapeError(f"load_state_dict for {type(self).__name__}: " + "; ".join(problems))
        for name, array in converted.items():
            params[name].data = array  # a new array: graphs recorded before keep the values they saw

    # ------------------------------------------------------------ printing

    def extra_repr(self) -> str:
        """One line of settings shown inside the parentheses of repr()."""
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


class ModuleList(Module):
    """A list of submodules, named 0, 1, 2, ... in the parameter names."""

    def __init__(self, modules: list[Module] | None = None) -> None:
        for i, module in enumerate(modules or []):
            setattr(self, str(i), module)

    def _items(self) -> list[Module]:
        return [m for _, m in self.named_children()]

    def __len__(self) -> int:
        return len(self._items())

    def __getitem__(self, i: int) -> Module:
        return self._items()[i]

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items())

    def append(self, module: Module) -> None:
        setattr(self, str(len(self)), module)
