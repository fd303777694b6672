"""One row per module call: forward hooks that record structure, FLOPs and output bytes.

A pre-hook (``with_kwargs=True``) opens a frame when a module is called and a forward
hook closes it, so a module reused at two places or called in a loop gets one row per
call, in call order. FLOPs of a call are the growth of ``FlopCounterMode``'s total
between the two hooks (``flops_total``, children included); ``flops`` is what is left
after the children's. A call that raises never reaches its forward hook: the frames
still open when the forward fails are the chain of calls that failed, innermost last.

Values are described as JSON: tensors as ``{"shape", "dtype"}``; lists, tuples, dicts,
dataclasses and Hugging Face ``ModelOutput``s as ``{"type", "items"}``; ``None`` as
``null``; anything else as ``{"type", "repr"}`` (a short repr).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from torchscope.inspect.structure import dtype_name

MAX_DESCRIBE_DEPTH = 6
MAX_ITEMS = 32  # per container; the rest is counted in "more"
MAX_REPR = 80


def _repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a user's __repr__ may raise, or need values fake tensors do not have
        text = f"<repr raised {type(exc).__name__}>"
    text = " ".join(text[: MAX_REPR * 4].split())
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 1] + "…"


def describe(value: Any, depth: int = 0) -> Any:
    """A JSON description of a forward's input or output (see the module docstring)."""
    if isinstance(value, torch.Tensor):
        return {"shape": list(value.shape), "dtype": dtype_name(value.dtype)}
    if value is None:
        return None
    if isinstance(value, bool | int | float | str):
        return {"type": type(value).__name__, "repr": _repr(value)}
    if depth >= MAX_DESCRIBE_DEPTH:
        return {"type": type(value).__name__, "repr": "…"}
    cls = type(value).__name__
    if isinstance(value, dict):  # dicts, OrderedDicts, ModelOutputs (which hold only their set fields)
        keys = list(value.keys())
        out: dict[str, Any] = {
            "type": cls,
            "items": {str(k): describe(value[k], depth + 1) for k in keys[:MAX_ITEMS]},
        }
    elif isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        fields = list(value._fields)
        out = {"type": cls, "items": {f: describe(getattr(value, f), depth + 1) for f in fields[:MAX_ITEMS]}}
        keys = fields
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        keys = [f.name for f in dataclasses.fields(value)]
        out = {"type": cls, "items": {k: describe(getattr(value, k, None), depth + 1) for k in keys[:MAX_ITEMS]}}
    elif isinstance(value, list | tuple):
        keys = list(range(len(value)))
        out = {"type": cls, "items": [describe(v, depth + 1) for v in value[:MAX_ITEMS]]}
    else:
        return {"type": cls, "repr": _repr(value)}
    if len(keys) > MAX_ITEMS:
        out["more"] = len(keys) - MAX_ITEMS
    return out


def tensors_in(value: Any, depth: int = 0) -> list[torch.Tensor]:
    """Every tensor inside an output (lists, tuples, dicts, dataclasses), each object once."""
    found: dict[int, torch.Tensor] = {}

    def walk(v: Any, d: int) -> None:
        if isinstance(v, torch.Tensor):
            found.setdefault(id(v), v)
        elif d > MAX_DESCRIBE_DEPTH * 2:
            return
        elif isinstance(v, dict):
            for item in v.values():
                walk(item, d + 1)
        elif isinstance(v, list | tuple):
            for item in v:
                walk(item, d + 1)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            for f in dataclasses.fields(v):
                walk(getattr(v, f.name, None), d + 1)

    walk(value, depth)
    return list(found.values())


def tensor_bytes(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@dataclass(slots=True)
class Call:
    """One call of one module."""

    index: int
    path: str
    cls: str
    call: int  # counts from 0 per path
    depth: int  # 0 for the model's own call
    parent: int | None  # index of the enclosing call
    inputs: dict[str, Any]
    params: int  # parameters of the module's subtree (tied counted once)
    outputs: Any = None
    flops: int = 0
    flops_total: int = 0
    output_bytes: int = 0
    leaf: bool = True  # no module calls inside
    state: str = "running"  # "done", "raised" (the caller caught it) or "failed"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "index": self.index,
            "path": self.path,
            "class": self.cls,
            "call": self.call,
            "depth": self.depth,
            "parent": self.parent,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "flops": self.flops,
            "flops_total": self.flops_total,
            "output_bytes": self.output_bytes,
            "params": self.params,
        }
        if self.state != "done":
            out["state"] = self.state
        return out


@dataclass(slots=True)
class _Frame:
    call: Call
    module_id: int
    flops_at_start: int
    children_flops: int = 0


class Recorder:
    """Hooks on every registered module of ``root``; ``calls`` in call order; remove with ``detach()``."""

    def __init__(self, root: nn.Module, flops: Callable[[], int], params: dict[int, int]) -> None:
        self.calls: list[Call] = []
        self.stack: list[_Frame] = []
        self._flops = flops
        self._params = params
        self._paths: dict[int, str] = {}
        self._counts: dict[int, int] = {}
        self._handles: list[RemovableHandle] = []
        for path, m in root.named_modules():
            self._paths[id(m)] = path
            if isinstance(m, torch.jit.ScriptModule):
                continue  # takes no Python hooks: its work counts in the call around it
            self._handles.append(m.register_forward_pre_hook(self._pre, with_kwargs=True))
            self._handles.append(m.register_forward_hook(self._post, with_kwargs=True))

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _pre(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        key = id(module)
        n = self._counts.get(key, 0)
        self._counts[key] = n + 1
        parent = self.stack[-1].call if self.stack else None
        if parent is not None:
            parent.leaf = False
        call = Call(
            index=len(self.calls),
            path=self._paths.get(key, "?"),
            cls=type(module).__name__,
            call=n,
            depth=len(self.stack),
            parent=parent.index if parent is not None else None,
            inputs={"args": [describe(a) for a in args], "kwargs": {k: describe(v) for k, v in kwargs.items()}},
            params=self._params.get(key, 0),
        )
        self.calls.append(call)
        self.stack.append(_Frame(call, key, self._flops()))

    def _close(self, frame: _Frame, now: int) -> None:
        frame.call.flops_total = now - frame.flops_at_start
        frame.call.flops = frame.call.flops_total - frame.children_flops
        if self.stack:
            self.stack[-1].children_flops += frame.call.flops_total

    def _post(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        now = self._flops()
        key = id(module)
        if not any(f.module_id == key for f in self.stack):
            return
        # Frames above ours raised and were caught inside this call: close them first.
        while self.stack[-1].module_id != key:
            stale = self.stack.pop()
            stale.call.state = "raised"
            self._close(stale, now)
        frame = self.stack.pop()
        frame.call.outputs = describe(output)
        frame.call.output_bytes = tensor_bytes(tensors_in(output))
        frame.call.state = "done"
        self._close(frame, now)

    def fail_open_frames(self) -> Call | None:
        """After a failed forward: mark the open calls failed; returns the innermost (where it failed)."""
        now = self._flops()
        innermost = self.stack[-1].call if self.stack else None
        while self.stack:
            frame = self.stack.pop()
            frame.call.state = "failed"
            self._close(frame, now)
        return innermost
