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

from app.inspect.structure import dtype_name

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


def lint(model: nn.Module) -> list[dict[str, Any]]:
    """Findings ``{"kind", "path", "attribute", "message", "fix"}`` for every module of the tree."""
    findings: list[dict[str, Any]] = []
    registered_ids = {id(t) for t in model.parameters()} | {id(t) for t in model.buffers()}
    for path, module in model.named_modules():
        for attr, value in vars(module).items():
            if attr in _MODULE_INTERNALS or attr.startswith("__"):
                continue
            where = f"{path}.{attr}" if path else attr
            owner = type(module).__name__
            if isinstance(value, torch.Tensor):
                if id(value) in registered_ids:  # e.g. an alias of a registered tensor
                    continue
                shape = list(value.shape)
                findings.append(
                    {
                        "kind": "unregistered_tensor",
                        "path": where,
                        "module": path,
                        "attribute": attr,
                        "message": (
                            f"{owner}.{attr} is a plain tensor attribute (shape {shape}, "
                            f"{dtype_name(value.dtype)}): it is not in parameters() nor in state_dict(), "
                            "so it is never trained, never saved, and .to(device) does not move it."
                        ),
                        "fix": (
                            f"self.{attr} = nn.Parameter(tensor) if it should be learned; "
                            f"self.register_buffer({attr!r}, tensor) if it is state to save and move "
                            f"(persistent=False to keep it out of state_dict)."
                        ),
                    }
                )
            elif isinstance(value, _CONTAINERS) and not isinstance(value, nn.Module):
                try:
                    modules, params, tensors = _scan_container(value)
                except Exception:  # an exotic container that cannot be iterated safely
                    continue
                kind = type(value).__name__ if type(value).__name__ in ("list", "tuple", "dict", "set", "frozenset") else "list"
                if modules or params:
                    hidden = sum(p.numel() for m in modules for p in m.parameters()) + sum(
                        p.numel() for p in params
                    )
                    what = []
                    if modules:
                        classes = sorted({type(m).__name__ for m in modules})
                        what.append(f"{len(modules)} module(s) ({', '.join(classes)})")
                    if params:
                        what.append(f"{len(params)} nn.Parameter(s)")
                    fix_cls = _FIX[(kind, "module" if modules else "parameter")]
                    findings.append(
                        {
                            "kind": "plain_container",
                            "path": where,
                            "module": path,
                            "attribute": attr,
                            "message": (
                                f"{owner}.{attr} is a plain Python {kind} holding {' and '.join(what)}: "
                                f"they are not registered, so their {_fmt(hidden)} parameters are not in "
                                "parameters() (never trained) nor in state_dict() (never saved), "
                                "and .to(device) does not move them."
                            ),
                            "fix": f"self.{attr} = {fix_cls}(...)",
                        }
                    )
                elif tensors:
                    findings.append(
                        {
                            "kind": "plain_container",
                            "path": where,
                            "module": path,
                            "attribute": attr,
                            "message": (
                                f"{owner}.{attr} is a plain Python {kind} holding {len(tensors)} tensor(s): "
                                "they are not in state_dict() and .to(device) does not move them."
                            ),
                            "fix": (
                                "register each with self.register_buffer(name, tensor), or use "
                                "nn.ParameterList / nn.ParameterDict if they should be learned"
                            ),
                        }
                    )
    return findings
