"""nn/module.py — Parameter and Module: the bookkeeping every layer shares. No autodiff here.

A Module finds its parameters by walking its own attributes in the order they
were assigned: a `Parameter` is a parameter, a `Module` (or a list of them in a
`ModuleList`) is a submodule whose parameters get a dotted prefix. Nothing is
registered by hand, so a layer never writes `parameters()` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from ..core.errors import ArgumentError, DTypeError, ShapeError, fmt_shape
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


ON_CPU: dict[str, tuple[Any, ...]] = {"device": (None, "cpu")}  # the PyTorch keyword every layer takes


def reject_unsupported(owner: str, keywords: Mapping[str, Any], pytorchs: Mapping[str, tuple[Any, ...]]) -> None:
    """Keywords a layer took in **kwargs: PyTorch's (`pytorchs`: name -> values that change nothing here)
    are accepted at those values and otherwise refused by name; any other keyword is unexpected. Either
    way the error names the public class, `owner`."""
    for name, value in keywords.items():
        if name not in pytorchs:
            raise ArgumentError(f"{owner}: unexpected keyword argument {name!r}")
        if not any(value is ok or (isinstance(value, str | int | float) and value == ok) for ok in pytorchs[name]):
            raise ArgumentError(f"{owner}: {name} is not supported (got {name}={value!r})")


class RemovableHandle:
    """What a register_*_hook returns: `.remove()` takes the hook out again (twice is harmless)."""

    _next_id = 0

    def __init__(self, hooks: dict[int, Any]) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


class Module:
    """Base class of layers. Subclasses set Parameters and Modules as attributes and define `forward`."""

    training: bool = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} defines no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        output = self.forward(*args, **kwargs)
        hooks = self.__dict__.get("_forward_hooks")
        if hooks:
            for hook in list(hooks.values()):
                replaced = hook(self, args, output)
                output = output if replaced is None else replaced
        return output

    def register_forward_hook(self, hook: Callable[[Module, tuple[Any, ...], Any], Any]) -> RemovableHandle:
        """Call `hook(module, args, output)` after every forward; a non-None result replaces the output.

        Returns a handle whose `.remove()` unregisters the hook, as PyTorch's does."""
        hooks: dict[int, Callable[..., Any]] = self.__dict__.setdefault("_forward_hooks", {})
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

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


class Sequential(Module):
    """Modules applied one after another: `Sequential(a, b, c)(x)` is `c(b(a(x)))`.

    Submodules are named 0, 1, 2, ... in the parameter names, or by the keys of an
    ordered dict given instead, as in PyTorch. Indexing with an int gives a module,
    with a slice a Sequential of the slice.

    >>> from tinygrad_rnn.nn import Linear, ReLU
    >>> model = Sequential(Linear(3, 4, rng=0), ReLU(), Linear(4, 1, rng=1))
    >>> model(np.ones((2, 3))).shape
    (2, 1)
    >>> [name for name, _ in model.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        first = modules[0] if len(modules) == 1 else None
        items = list(first.items()) if isinstance(first, Mapping) else list(enumerate(modules))
        for name, module in items:
            _add_child("Sequential", self, str(name), module)

    def forward(self, input: Any) -> Any:
        for _, module in self.named_children():
            input = module(input)
        return input

    def __len__(self) -> int:
        return len(list(self.named_children()))

    def __getitem__(self, index: int | slice) -> Any:
        children = list(self.named_children())
        if isinstance(index, slice):
            return Sequential(dict(children[index]))
        return children[index][1]

    def __iter__(self) -> Iterator[Module]:
        return (m for _, m in self.named_children())

    def append(self, module: Module) -> Sequential:
        _add_child("Sequential", self, str(len(self)), module)
        return self


class ModuleDict(Module):
    """Submodules by name, in insertion order; `d["name"]`, `d.keys()`, `d.items()`, as a dict."""

    def __init__(self, modules: Mapping[str, Module] | None = None) -> None:
        for name, module in (modules or {}).items():
            self[name] = module

    def __setitem__(self, name: str, module: Module) -> None:
        _add_child("ModuleDict", self, name, module)

    def __getitem__(self, name: str) -> Module:
        children = dict(self.named_children())
        if name not in children:
            raise KeyError(f"ModuleDict has no module {name!r}; it has {', '.join(children) or 'none'}")
        return children[name]

    def __contains__(self, name: object) -> bool:
        return name in dict(self.named_children())

    def __len__(self) -> int:
        return len(list(self.named_children()))

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.named_children())

    def keys(self) -> list[str]:
        return [name for name, _ in self.named_children()]

    def values(self) -> list[Module]:
        return [m for _, m in self.named_children()]

    def items(self) -> list[tuple[str, Module]]:
        return list(self.named_children())


def _add_child(owner: str, container: Module, name: str, module: Any) -> None:
    """Set a container's submodule, refusing what would not be found (or would shadow a method)."""
    if not isinstance(module, Module):
        raise ArgumentError(f"{owner}: {name!r} must be a Module, got {type(module).__name__}")
    if not isinstance(name, str) or not name or "." in name or hasattr(type(container), name):
        raise ArgumentError(f"{owner}: {name!r} cannot name a submodule (empty, dotted, or an attribute of {owner})")
    setattr(container, name, module)
