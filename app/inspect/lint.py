"""The classic nn.Module mistakes, found by looking at every module's attributes.

``nn.Module.__setattr__`` registers only ``nn.Parameter`` values and
``nn.Module`` values assigned directly; anything else (a plain tensor, a list
of layers) lands in the instance ``__dict__``: not in ``parameters()``, not in
``state_dict()``, not moved by ``.to()``. That is exactly what we look for.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchscope.inspect.structure import dtype_name

_CONTAINERS = (list, tuple, dict, set, frozenset)
# nn.Module's own bookkeeping (``_parameters``, ``_modules``, hook dicts...): never user mistakes.
_MODULE_INTERNALS = frozenset(vars(nn.Module()))
_FIX = {
    ("list", "module"): "nn.ModuleList",
    ("tuple", "module"): "nn.ModuleList",
    ("set", "module"): "nn.ModuleList",
    ("frozenset", "module"): "nn.ModuleList",
    ("dict", "module"): "nn.ModuleDict",
    ("list", "parameter"): "nn.ParameterList",
    ("tuple", "parameter"): "nn.ParameterList",
    ("set", "parameter"): "nn.ParameterList",
    ("frozenset", "parameter"): "nn.ParameterList",
    ("dict", "parameter"): "nn.ParameterDict",
}


def _items(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    return list(value)


def _scan_container(value: Any, depth: int = 0) -> tuple[list[nn.Module], list[nn.Parameter], list[torch.Tensor]]:
    """Modules, Parameters and plain tensors inside a container (nested up to 3 levels)."""
    modules: list[nn.Module] = []
    params: list[nn.Parameter] = []
    tensors: list[torch.Tensor] = []
    for item in _items(value):
        if isinstance(item, nn.Module):
            modules.append(item)
        elif isinstance(item, nn.Parameter):
            params.append(item)
        elif isinstance(item, torch.Tensor):
            tensors.append(item)
        elif isinstance(item, _CONTAINERS) and depth < 2:
            m, p, t = _scan_container(item, depth + 1)
            modules += m
            params += p
            tensors += t
    return modules, params, tensors


def _fmt(n: int) -> str:
    return f"{n:,}"


def _container_kind(value: Any) -> str:
    """``list``/``tuple``/``dict``/``set`` for the fix table; subclasses (OrderedDict...) by their base."""
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, set | frozenset):
        return "set"
    return "tuple" if isinstance(value, tuple) else "list"


def lint(model: nn.Module) -> list[dict[str, Any]]:
    """Findings ``{"kind", "path", "module", "attribute", "message", "fix"}`` for every module of the tree."""
    findings: list[dict[str, Any]] = []

    def found(kind: str, path: str, attr: str, message: str, fix: str) -> None:
        where = f"{path}.{attr}" if path else attr
        findings.append(
            {"kind": kind, "path": where, "module": path, "attribute": attr, "message": message, "fix": fix}
        )

    registered_ids = {id(t) for t in model.parameters()} | {id(t) for t in model.buffers()}
    # A plain list of modules that are registered elsewhere (self.first_two = [self.blocks[0], self.blocks[1]])
    # is only a convenience view: their parameters are trained and saved through the registered path.
    registered_modules = {id(m) for m in model.modules()}
    for path, module in model.named_modules():
        owner = type(module).__name__
        for attr, value in vars(module).items():
            if attr in _MODULE_INTERNALS or attr.startswith("__"):
                continue
            if isinstance(value, torch.Tensor):
                if id(value) in registered_ids:  # e.g. an alias of a registered tensor
                    continue
                found(
                    "unregistered_tensor",
                    path,
                    attr,
                    f"{owner}.{attr} is a plain tensor attribute (shape {list(value.shape)}, "
                    f"{dtype_name(value.dtype)}): it is not in parameters() nor in state_dict(), "
                    "so it is never trained, never saved, and .to(device) does not move it.",
                    f"self.{attr} = nn.Parameter(tensor) if it should be learned; "
                    f"self.register_buffer({attr!r}, tensor) if it is state to save and move "
                    f"(persistent=False to keep it out of state_dict).",
                )
            elif isinstance(value, _CONTAINERS) and not isinstance(value, nn.Module):
                try:
                    modules, params, tensors = _scan_container(value)
                except Exception:  # an exotic container that cannot be iterated safely
                    continue
                kind = _container_kind(value)
                modules = [m for m in modules if id(m) not in registered_modules]
                params = [p for p in params if id(p) not in registered_ids]
                tensors = [t for t in tensors if id(t) not in registered_ids]
                if modules or params:
                    # What is reachable only through this container, each tensor once.
                    unreachable = {id(p): p for m in modules for p in m.parameters() if id(p) not in registered_ids}
                    unreachable.update((id(p), p) for p in params)
                    hidden = sum(p.numel() for p in unreachable.values())
                    what = []
                    if modules:
                        classes = sorted({type(m).__name__ for m in modules})
                        what.append(f"{len(modules)} module(s) ({', '.join(classes)})")
                    if params:
                        what.append(f"{len(params)} nn.Parameter(s)")
                    found(
                        "plain_container",
                        path,
                        attr,
                        f"{owner}.{attr} is a plain Python {kind} holding {' and '.join(what)}: "
                        f"they are not registered, so their {_fmt(hidden)} parameters are not in "
                        "parameters() (never trained) nor in state_dict() (never saved), "
                        "and .to(device) does not move them.",
                        f"self.{attr} = {_FIX[(kind, 'module' if modules else 'parameter')]}(...)",
                    )
                elif tensors:
                    found(
                        "plain_container",
                        path,
                        attr,
                        f"{owner}.{attr} is a plain Python {kind} holding {len(tensors)} tensor(s): "
                        "they are not in state_dict() and .to(device) does not move them.",
                        "register each with self.register_buffer(name, tensor), or use "
                        "nn.ParameterList / nn.ParameterDict if they should be learned",
                    )
    return findings
