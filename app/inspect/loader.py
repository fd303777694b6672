"""Turn a SPEC (``pkg.module:attr`` or ``path/to/file.py:attr``) into an ``nn.Module``.

``attr`` may be dotted (``module:Zoo.small``) and may name an ``nn.Module``
instance, an ``nn.Module`` subclass, or a callable returning a module; classes
and callables get the JSON ``kwargs``. With ``meta=True`` construction runs
under ``torch.device("meta")``: structure and shapes, no memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from torchscope.inspect.errors import ModelSpecError


@dataclass(frozen=True)
class ModelSpec:
    """A parsed SPEC: where the object lives and how to build it."""

    text: str
    target: str  # dotted module name or a file path
    attr: str  # possibly dotted attribute path
    name: str  # display name (``NAME=SPEC`` or the last attribute component)
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_file(self) -> bool:
        return self.target.endswith(".py") or "/" in self.target or os.sep in self.target


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """Parse ``--kwargs`` JSON; it must be an object."""
    if text is None or text.strip() == "":
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelSpecError(f"--kwargs is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ModelSpecError(
            f"--kwargs must be a JSON object like '{{\"depth\": 18}}', got {type(value).__name__}"
        )
    return value


def parse_spec(text: str, kwargs: dict[str, Any] | None = None) -> ModelSpec:
    """Parse ``[NAME=]target:attr``."""
    raw = text.strip()
    name = ""
    head, sep, rest = raw.partition("=")
    if sep and ":" in rest and ":" not in head and "/" not in head and head.isidentifier():
        name, raw = head, rest
    target, sep, attr = raw.rpartition(":")
    if not sep or not target or not attr:
        raise ModelSpecError(
            f"{text!r}: a SPEC is 'package.module:attr' or 'path/to/file.py:attr' "
            "(for example 'mypkg.models:build_net')"
        )
    if not all(part.isidentifier() for part in attr.split(".")):
        raise ModelSpecError(f"{text!r}: {attr!r} is not an attribute name (letters, digits, _ and .)")
    return ModelSpec(text=text, target=target, attr=attr, name=name or attr.split(".")[-1], kwargs=kwargs or {})


def _import_target(spec: ModelSpec) -> ModuleType:
    if spec.is_file:
        path = Path(spec.target).expanduser().resolve()
        if not path.is_file():
            raise ModelSpecError(f"{spec.text}: file not found: {spec.target}")
        # A stable, unique module name per file, so two files named models.py do not collide.
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
        mod_name = f"torchscope_user_{path.stem}_{digest}"
        if mod_name in sys.modules:
            return sys.modules[mod_name]
        # Like `python path/to/file.py`: its folder is importable, so sibling imports work.
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ModelSpecError(f"{spec.text}: cannot import {spec.target} as Python")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(mod_name, None)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise ModelSpecError(f"{spec.text}: importing {spec.target} raised {_describe(exc)}") from exc
        return module
    # The console script does not put the working directory on sys.path; `python -m` does.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(spec.target)
    except ModuleNotFoundError as exc:
        if exc.name and spec.target.startswith(exc.name):
            raise ModelSpecError(f"{spec.text}: no module named {exc.name!r}") from exc
        raise ModelSpecError(f"{spec.text}: importing {spec.target} raised {_describe(exc)}") from exc
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ModelSpecError(f"{spec.text}: importing {spec.target} raised {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _resolve_attr(spec: ModelSpec, module: ModuleType) -> Any:
    obj: Any = module
    walked = []
    for part in spec.attr.split("."):
        walked.append(part)
        if not hasattr(obj, part):
            where = spec.target if len(walked) == 1 else f"{spec.target}:{'.'.join(walked[:-1])}"
            raise ModelSpecError(f"{spec.text}: {where} has no attribute {part!r}")
        obj = getattr(obj, part)
    return obj


def resolve_object(spec: ModelSpec) -> Any:
    """Import the SPEC's target and return the object it names (no call); failures are ModelSpecErrors."""
    return _resolve_attr(spec, _import_target(spec))


def build(spec: ModelSpec, *, meta: bool = False) -> nn.Module:
    """Import and build the module a SPEC names; every failure is a ModelSpecError."""
    obj = _resolve_attr(spec, _import_target(spec))
    if isinstance(obj, nn.Module):
        if spec.kwargs:
            raise ModelSpecError(f"{spec.text}: is an already-built nn.Module instance; --kwargs cannot apply")
        # An instance already exists in memory: --meta cannot un-allocate it, so it is served as is.
        return obj
    if not callable(obj):
        raise ModelSpecError(
            f"{spec.text}: is {_a(type(obj).__name__)}, not an nn.Module, an nn.Module subclass, "
            "or a callable returning one"
        )
    what = obj.__name__ if hasattr(obj, "__name__") else spec.attr
    device_ctx = torch.device("meta") if meta else contextlib.nullcontext()
    try:
        with device_ctx:
            result = obj(**spec.kwargs)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        args = ", ".join(f"{k}={v!r}" for k, v in spec.kwargs.items())
        raise ModelSpecError(f"{spec.text}: {what}({args}) raised {_describe(exc)}") from exc
    if not isinstance(result, nn.Module):
        raise ModelSpecError(
            f"{spec.text}: {what}(...) returned {_a(type(result).__name__)}, not an nn.Module"
        )
    return result


def _a(noun: str) -> str:
    """'an int', 'a dict': the article English wants before a type name."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def is_meta(module: nn.Module) -> bool:
    """True when the module's tensors live on the meta device (shapes only)."""
    for param in module.parameters():
        return param.is_meta
    for buffer in module.buffers():
        return buffer.is_meta
    return False


def describe(spec: ModelSpec) -> str:
    """First line of the docstring of what the SPEC names (class, factory, or the instance's class)."""
    try:
        obj = _resolve_attr(spec, _import_target(spec))
    except ModelSpecError:
        return ""
    return doc_line(type(obj) if isinstance(obj, nn.Module) else obj)


def doc_line(target: object) -> str:
    """First line of a class's or function's docstring; "" for torch's own."""
    import inspect as pyinspect

    if getattr(target, "__module__", "").startswith("torch."):
        return ""  # torch's own docstrings are reference prose (with :math:), not a description
    doc = pyinspect.getdoc(target) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
