"""Reading pickles without running them: the opcode scan and the restricted, metadata-only unpickler."""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import pickletools
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch

from torchscope.inspect.checkpoints.records import (
    UnreadableCheckpoint,
    UnsafeCheckpoint,
    first_line,
)

# ---------------------------------------------------------------------------
# Scanning pickles without executing them


def pickle_globals(data: bytes | IO[bytes], *, max_pickles: int = 1) -> list[str]:
    """Every global a pickle would import (``module.name``), in first-use order, never executing it.

    STACK_GLOBAL takes its names from the stack; we follow string pushes and the
    memo, which is how picklers emit them. A name we cannot resolve is reported
    as ``?.?`` (and so refused): the restricted unpickler stays the real gate.
    """
    stream: IO[bytes] = io.BytesIO(data) if isinstance(data, bytes) else data
    found: dict[str, None] = {}
    try:
        for _ in range(max_pickles):
            recent: list[Any] = []
            memo: dict[int, Any] = {}
            for opcode, arg, _pos in pickletools.genops(stream):
                name = opcode.name
                if name in ("GLOBAL", "INST"):
                    module, _, attr = str(arg).partition(" ")
                    found[compat_name(module, attr)] = None
                    recent.append(None)
                elif name == "STACK_GLOBAL":
                    mod_name = recent[-2] if len(recent) >= 2 else None
                    attr_name = recent[-1] if recent else None
                    if isinstance(mod_name, str) and isinstance(attr_name, str):
                        found[compat_name(mod_name, attr_name)] = None
                    else:
                        found["?.?"] = None
                    recent.append(None)
                elif name == "MEMOIZE":
                    memo[len(memo)] = recent[-1] if recent else None
                elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[int(arg or 0)] = recent[-1] if recent else None
                elif name in ("GET", "BINGET", "LONG_BINGET"):
                    recent.append(memo.get(int(arg or 0)))
                elif "UNICODE" in name or name in ("STRING", "BINSTRING", "SHORT_BINSTRING"):
                    recent.append(arg if isinstance(arg, str) else str(arg))
                elif name in ("STOP",):
                    break
                else:
                    recent.append(None)
            else:
                break
            if stream.read(1) == b"":
                break
            stream.seek(-1, io.SEEK_CUR)
    except (ValueError, EOFError, struct.error, UnicodeDecodeError) as err:
        raise UnreadableCheckpoint(
            f"the pickle is corrupt or truncated: {first_line(err)}", rule="format"
        ) from None
    return list(found)


def compat_name(module: str, name: str) -> str:
    # Python 2 names (protocol 2 pickles say __builtin__.set), mapped as torch and pickle do.
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def allowed_globals() -> dict[str, Any]:
    """The globals ``torch.load(weights_only=True)`` accepts, by ``module.name`` (incl. add_safe_globals)."""
    from torch import _weights_only_unpickler as wou

    allowed: dict[str, Any] = dict(wou._get_allowed_globals())
    allowed.update(wou._get_user_allowed_globals())  # type: ignore[no-untyped-call]
    return allowed


# ---------------------------------------------------------------------------
# The restricted unpickler: metadata only


# Not frozen: stubs are built per tensor while unpickling, and frozen dataclasses' __init__ is slow.
@dataclass(slots=True)
class StorageStub:
    key: str
    dtype: torch.dtype
    numel: int  # elements of dtype
    location: str

    @property
    def nbytes(self) -> int:
        return self.numel * itemsize(self.dtype)


@dataclass(slots=True)
class TensorStub:
    """A tensor's metadata from the pickle; its storage is never read."""

    storage: StorageStub
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    requires_grad: bool = False
    is_parameter: bool = False

    @property
    def dtype(self) -> torch.dtype:
        return self.storage.dtype


class Disallowed(pickle.UnpicklingError):
    """find_class met a global that weights_only does not allow."""


class NeedsTorch(Exception):
    """The pickle uses an allowed global we do not stub (qtensor, subclass...): let torch load it."""


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


def itemsize(dtype: torch.dtype) -> int:
    return int(dtype.itemsize)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> TensorStub:
    if type(storage) is not StorageStub:
        raise NeedsTorch("tensor without a stubbed storage")
    return TensorStub(storage, int(offset), tuple(map(int, size)), tuple(map(int, stride)), bool(rest[0]) if rest else False)


def _rebuild_tensor_v3(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any, dtype: Any, *rest: Any
) -> TensorStub:
    stub = _rebuild_tensor(storage, offset, size, stride, requires_grad)
    if isinstance(dtype, torch.dtype) and dtype != stub.storage.dtype:
        storage = StorageStub(stub.storage.key, dtype, stub.storage.nbytes // itemsize(dtype), stub.storage.location)
        return TensorStub(storage, stub.offset, stub.shape, stub.stride, stub.requires_grad)
    return stub


def _rebuild_parameter(data: Any, requires_grad: Any, *rest: Any) -> TensorStub:
    if not isinstance(data, TensorStub):
        raise NeedsTorch("parameter without a stubbed tensor")
    return TensorStub(data.storage, data.offset, data.shape, data.stride, bool(requires_grad), True)


# Real objects returned as themselves: immutable C-level types and values, so a
# BUILD opcode cannot monkey-patch them (setattr on them raises).
_PLAIN_GLOBALS = {
    "collections.OrderedDict",
    "torch.Size",
    "torch.device",
    "_codecs.encode",
    "builtins.set",
    "builtins.bytearray",
    "builtins.complex",
}
_STUB_FUNCTIONS: dict[str, Callable[..., TensorStub]] = {
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
}


class StubUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` knowing only what weights_only allows; tensors become TensorStubs."""

    def __init__(self, file: io.BytesIO, allowed: Mapping[str, Any]) -> None:
        super().__init__(file)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        # torch.save writes protocol 2: Python 2 names (__builtin__.set) are mapped, as torch's loader does.
        full = compat_name(module, name)
        if full not in self._allowed:
            raise Disallowed(f"global {full} is not allowed")
        obj = self._allowed[full]
        if full in _STUB_FUNCTIONS:
            fn: Callable[..., TensorStub] = _STUB_FUNCTIONS[full]
            # a fresh callable each time, so a BUILD opcode can only touch this one
            return lambda *args: fn(*args)
        if isinstance(obj, torch.dtype) or full in _PLAIN_GLOBALS:
            return obj
        if full.startswith("torch.") and full.endswith("Storage"):
            dtype = getattr(obj, "dtype", None)
            if isinstance(dtype, torch.dtype):
                return _StorageType(dtype)
            if full == "torch.storage.UntypedStorage":
                return _StorageType(torch.uint8)
        raise NeedsTorch(full)

    def persistent_load(self, pid: Any) -> Any:
        if (
            not isinstance(pid, tuple)
            or len(pid) != 5
            or pid[0] != "storage"
            or not isinstance(pid[1], _StorageType)
            or not isinstance(pid[2], str)
            or not isinstance(pid[4], int)
        ):
            raise pickle.UnpicklingError(f"unexpected persistent id {str(pid)[:80]}")
        return StorageStub(pid[2], pid[1].dtype, int(pid[4]), str(pid[3]))


def torch_load(path: Path, *, trusted: bool, mmap: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise UnsafeCheckpoint(
                f"{path.name}: refused by torch.load(weights_only=True): {first_line(err)}",
                rule="weights_only",
            ) from None
        raise UnreadableCheckpoint(f"{path.name}: corrupt pickle: {first_line(err)}", rule="format") from None
    except Exception as err:  # the file is untrusted input: whatever torch.load raises on it is a bad file, not a bug
        what = "cannot load the trusted pickle" if trusted else "torch.load failed"
        raise UnreadableCheckpoint(f"{path.name}: {what}: {first_line(err)}", rule="format") from None


# How the server is told to trust a file; `torchscope inspect` says its own (its flag takes no FILE).
TRUST_HINT = "If you trust this exact file, start torchscope with --trust-pickle FILE."


def refuse(name: str, wanted: list[str]) -> UnsafeCheckpoint:
    shown = ", ".join(wanted[:12]) + (f" and {len(wanted) - 12} more" if len(wanted) > 12 else "")
    return UnsafeCheckpoint(
        f"{name} needs globals that torch.load(weights_only=True) does not allow: {shown}. "
        "It may be a whole pickled model or contain custom classes, and loading it could run code. " + TRUST_HINT,
        rule="weights_only",
        globals=wanted,
    )
