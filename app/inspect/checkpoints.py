"""Opening checkpoints safely and lazily: torch.save archives, safetensors (single and sharded).

Listing a checkpoint (keys, shapes, dtypes) never reads tensor data:
- a ``torch.save`` zip archive is listed by unpickling its ``data.pkl`` with a
  restricted unpickler of our own that only knows the globals torch's
  ``weights_only`` loader allows and turns storages into stubs (key, dtype, size);
- a safetensors file is listed from its JSON header, whose offsets are checked
  against the file size.
Tensors are materialised one at a time, memory-mapped:
``torch.load(weights_only=True, mmap=True)`` for torch archives, an mmap of the file for safetensors.

Safety: nothing is ever unpickled with arbitrary globals unless the user named
that exact file (resolved path) with ``--trust-pickle``. A file that wants other
globals is refused with the list of globals it wants, found by scanning the
pickle opcodes with ``pickletools`` (which never executes anything).
"""

from __future__ import annotations

import _compat_pickle
import functools
import io
import itertools
import json
import math
import mmap
import os
import pickle
import pickletools
import re
import struct
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, NamedTuple

import torch
from torch import nn

from torchscope.inspect.errors import InspectError, InvalidRequest, NotFound, NoValues

# ---------------------------------------------------------------------------
# Errors


class UnreadableCheckpoint(InspectError):
    """Empty, truncated, corrupt, lying or wrong-format file."""

    status = 422


class UnsafeCheckpoint(InspectError):
    """A pickle that needs globals torch's weights_only loader does not allow."""

    status = 422


class CheckpointFormat(StrEnum):
    TORCH = "torch"  # torch.save zip archive (.pt/.pth/.bin/.ckpt)
    TORCH_LEGACY = "torch-legacy"  # torch.save(_use_new_zipfile_serialization=False)
    SAFETENSORS = "safetensors"
    SAFETENSORS_SHARDED = "safetensors-sharded"


class Group(StrEnum):
    """Where a tensor sits in the checkpoint."""

    MODEL = "model"  # in the state_dict that load_state_dict would get
    OPTIMIZER = "optimizer"
    OTHER = "other"


# Key paths: container levels joined with "/", since state_dict keys already use dots
# ("model/fc1.weight" is key "fc1.weight" of the dict under "model").
SEP = "/"

# The names a training script usually gives the model's state_dict inside a checkpoint dict.
STATE_DICT_NAMES = (
    "state_dict",
    "model_state_dict",
    "model",
    "module",
    "net",
    "network",
    "model_state",
    "weights",
    "params",
    "ema",
    "model_ema",
)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".json", ".tar", ".pkl")

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit on header size
_MAX_OTHER = 500  # non-tensor entries kept for display


@functools.cache
def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


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
                    found[_compat_name(module, attr)] = None
                    recent.append(None)
                elif name == "STACK_GLOBAL":
                    mod_name = recent[-2] if len(recent) >= 2 else None
                    attr_name = recent[-1] if recent else None
                    if isinstance(mod_name, str) and isinstance(attr_name, str):
                        found[_compat_name(mod_name, attr_name)] = None
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
            f"the pickle is corrupt or truncated: {_first_line(err)}", rule="format"
        ) from None
    return list(found)


def _compat_name(module: str, name: str) -> str:
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


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]


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
        return self.numel * _itemsize(self.dtype)


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


class _Disallowed(pickle.UnpicklingError):
    """find_class met a global that weights_only does not allow."""


class _NeedsTorch(Exception):
    """The pickle uses an allowed global we do not stub (qtensor, subclass...): let torch load it."""


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


def _itemsize(dtype: torch.dtype) -> int:
    return int(dtype.itemsize)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> TensorStub:
    if type(storage) is not StorageStub:
        raise _NeedsTorch("tensor without a stubbed storage")
    return TensorStub(storage, int(offset), tuple(map(int, size)), tuple(map(int, stride)), bool(rest[0]) if rest else False)


def _rebuild_tensor_v3(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any, dtype: Any, *rest: Any
) -> TensorStub:
    stub = _rebuild_tensor(storage, offset, size, stride, requires_grad)
    if isinstance(dtype, torch.dtype) and dtype != stub.storage.dtype:
        storage = StorageStub(stub.storage.key, dtype, stub.storage.nbytes // _itemsize(dtype), stub.storage.location)
        return TensorStub(storage, stub.offset, stub.shape, stub.stride, stub.requires_grad)
    return stub


def _rebuild_parameter(data: Any, requires_grad: Any, *rest: Any) -> TensorStub:
    if not isinstance(data, TensorStub):
        raise _NeedsTorch("parameter without a stubbed tensor")
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


class _StubUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` knowing only what weights_only allows; tensors become TensorStubs."""

    def __init__(self, file: io.BytesIO, allowed: Mapping[str, Any]) -> None:
        super().__init__(file)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        # torch.save writes protocol 2: Python 2 names (__builtin__.set) are mapped, as torch's loader does.
        full = _compat_name(module, name)
        if full not in self._allowed:
            raise _Disallowed(f"global {full} is not allowed")
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
        raise _NeedsTorch(full)

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


# ---------------------------------------------------------------------------
# Safetensors headers

_ST_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "U16": torch.uint16,
    "U32": torch.uint32,
    "U64": torch.uint64,
    "C64": torch.complex64,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "F8_E4M3FNUZ": torch.float8_e4m3fnuz,
    "F8_E5M2FNUZ": torch.float8_e5m2fnuz,
}


class SafetensorsEntry(NamedTuple):
    # a NamedTuple, not a dataclass: building thousands of these is most of a header's parse time
    key: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int  # absolute byte offsets in the file
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    path: Path
    entries: dict[str, SafetensorsEntry]
    metadata: dict[str, str]
    file_size: int


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """Parse and validate a safetensors header; never reads tensor data."""
    name = path.name
    size = path.stat().st_size
    if size < 8:
        raise UnreadableCheckpoint(
            f"{name}: {size} bytes is too short for a safetensors file (8-byte header length first)",
            rule="format",
        )
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > size - 8:
            raise UnreadableCheckpoint(
                f"{name}: the header claims {n} bytes but only {size - 8} follow the length field "
                "(truncated file or not safetensors)",
                rule="format",
            )
        if n > _MAX_HEADER:
            raise UnreadableCheckpoint(f"{name}: header of {n} bytes exceeds the {_MAX_HEADER}-byte limit", rule="format")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableCheckpoint(f"{name}: the safetensors header is not valid JSON: {_first_line(err)}", rule="format") from None
    if not isinstance(header, dict):
        raise UnreadableCheckpoint(f"{name}: the safetensors header is not a JSON object", rule="format")
    data_start = 8 + n
    data_size = size - data_start
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise UnreadableCheckpoint(f"{name}: __metadata__ must be an object of strings", rule="format")
    entries: dict[str, SafetensorsEntry] = {}
    dtypes = _ST_DTYPES
    for key, info in header.items():
        # Fast path for well-formed entries; anything odd goes to _entry_error for a precise message.
        try:
            dtype = dtypes[info["dtype"]]
            shape = info["shape"]
            begin, end = info["data_offsets"]
            ok = type(shape) is list and type(begin) is int and type(end) is int and 0 <= begin <= end <= data_size
            numel = 1
            if ok:
                for dim in shape:
                    if type(dim) is not int or dim < 0:
                        ok = False
                        break
                    numel *= dim
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok or end - begin != numel * dtype.itemsize:
            raise _entry_error(name, key, info, data_size)
        entries[key] = SafetensorsEntry(key, dtype, tuple(shape), data_start + begin, data_start + end)
    spans = sorted((e.begin, e.end, e.key) for e in entries.values() if e.end > e.begin)
    for (_b0, e0, k0), (b1, _e1, k1) in itertools.pairwise(spans):
        if b1 < e0:
            raise UnreadableCheckpoint(f"{name}: tensors {k0!r} and {k1!r} overlap in the file", rule="offsets")
    return SafetensorsHeader(path, entries, {str(k): str(v) for k, v in metadata.items()}, size)


def _entry_error(name: str, key: str, info: Any, data_size: int) -> UnreadableCheckpoint:
    """The precise complaint about one malformed safetensors header entry."""
    where = f"{name}: tensor {key!r}"

    def bad(message: str, rule: str = "format") -> UnreadableCheckpoint:
        return UnreadableCheckpoint(f"{where}: {message}", rule=rule, tensor=key)

    if not isinstance(info, dict):
        return bad("entry is not an object")
    dtype = _ST_DTYPES.get(str(info.get("dtype")))
    if dtype is None:
        return bad(f"unknown dtype {info.get('dtype')!r}")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
        return bad("shape must be a list of non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets) or not 0 <= offsets[0] <= offsets[1]:
        return bad("data_offsets must be [begin, end] with 0 <= begin <= end")
    begin, end = offsets
    need = math.prod(shape) * dtype.itemsize
    if end > data_size:
        return bad(
            f"data ends at byte {end} of the data section but the file holds only {data_size} "
            "bytes of data (truncated file or lying header)",
            "offsets",
        )
    return bad(f"data_offsets span {end - begin} bytes but shape {shape} of {dtype_name(dtype)} needs {need}", "offsets")


# ---------------------------------------------------------------------------
# Records


class TensorInfo(NamedTuple):
    """One tensor's metadata. An immutable NamedTuple rather than a frozen dataclass:
    a listing builds one per tensor and dataclass construction was most of a safetensors open."""

    key: str  # full key path
    shape: tuple[int, ...]
    dtype: str
    numel: int
    bytes: int
    group: Group
    storage: str | None = None  # torch storage key; tensors sharing it alias each other

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "numel": self.numel,
            "bytes": self.bytes,
            "group": str(self.group),
        }


@dataclass(frozen=True)
class ParamState:
    """One parameter's optimizer state: tensors by name (their key paths) and plain values."""

    id: int
    group: int
    name: str | None
    tensors: dict[str, str]  # state name -> full key path (exp_avg -> optimizer/state/0/exp_avg)
    values: dict[str, Any]  # state name -> plain value (e.g. an int step)


@dataclass(frozen=True)
class OptimizerInfo:
    path: str  # key path of the optimizer state_dict ("" when the file is one)
    param_groups: list[dict[str, Any]]  # hyperparameters per group, plus "params" ids
    params: list[ParamState]
    names_from: str | None  # "param_names" when the file names them, else None

    @property
    def param_ids(self) -> list[int]:
        return [pid for g in self.param_groups for pid in g["params"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "param_groups": self.param_groups,
            "params": [
                {
                    "id": p.id,
                    "group": p.group,
                    "name": p.name,
                    "state": {**{k: {"key": v} for k, v in p.tensors.items()}, **p.values},
                }
                for p in self.params
            ],
            "names_from": self.names_from,
        }


# ---------------------------------------------------------------------------
# Walking a loaded (stub or real) object


def _is_tensorish(obj: Any) -> bool:
    return isinstance(obj, (TensorStub, torch.Tensor))


def _tensor_meta(obj: TensorStub | torch.Tensor) -> tuple[tuple[int, ...], torch.dtype, str | None]:
    if isinstance(obj, TensorStub):
        return obj.shape, obj.dtype, f"{obj.storage.key}@{obj.offset}"
    storage = None
    try:
        if obj.device.type != "meta" and not obj.is_sparse:
            storage = f"{obj.untyped_storage().data_ptr()}@{obj.storage_offset()}"
    except (RuntimeError, NotImplementedError):
        storage = None
    return tuple(obj.shape), obj.dtype, storage


def _json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-able rendering of a non-tensor value (NaN/inf become strings; JSON has none)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value[:500] if isinstance(value, str) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (torch.dtype, torch.device, complex, bytes, bytearray)):
        return repr(value)[:200] if isinstance(value, (bytes, bytearray)) else str(value)
    if depth > 4:
        return repr(value)[:200]
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {str(k): _json_safe(v, depth + 1) for k, v in items[:50]}
        if len(items) > 50:
            out["…"] = f"{len(items) - 50} more"
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        seq = list(value)
        out_list = [_json_safe(v, depth + 1) for v in seq[:50]]
        if len(seq) > 50:
            out_list.append(f"… {len(seq) - 50} more")
        return out_list
    if _is_tensorish(value):
        return "<tensor>"
    return repr(value)[:200]


def _is_optimizer_state(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and isinstance(obj.get("state"), Mapping)
        and isinstance(obj.get("param_groups"), list)
        and all(isinstance(g, Mapping) and isinstance(g.get("params"), list) for g in obj["param_groups"])
    )


def _is_state_dict(obj: Any) -> bool:
    """A flat mapping whose values are tensors (``_extra_state`` entries may be anything)."""
    if not isinstance(obj, Mapping) or not obj:
        return False
    n = 0
    for k, v in obj.items():
        if not isinstance(k, str):
            return False
        if _is_tensorish(v):
            n += 1
        elif not k.endswith("_extra_state"):
            return False
    return n > 0


def _contains_tensor(obj: Any, depth: int = 0) -> bool:
    if _is_tensorish(obj) or isinstance(obj, nn.Module):
        return True
    if depth > 32:
        return False
    if isinstance(obj, Mapping):
        return any(_contains_tensor(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_contains_tensor(v, depth + 1) for v in obj)
    return False


def _join(prefix: str, part: Any) -> str:
    return f"{prefix}{SEP}{part}" if prefix else str(part)


@dataclass
class _Walk:
    tensors: dict[str, Any] = field(default_factory=dict)  # key path -> stub or tensor
    groups: dict[str, Group] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)
    optimizers: list[OptimizerInfo] = field(default_factory=list)
    state_dicts: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)  # (path, mapping)
    modules: list[tuple[str, str]] = field(default_factory=list)  # (path, class) of pickled modules


def _walk(obj: Any, path: str, out: _Walk, group: Group, depth: int = 0, seen: frozenset[int] = frozenset()) -> None:
    if _is_tensorish(obj):
        out.tensors[path] = obj
        out.groups[path] = group
        return
    if depth > 64 or id(obj) in seen:
        out.other[path] = "<recursive>"
        return
    seen = seen | {id(obj)}
    if isinstance(obj, nn.Module):  # only reachable for a trusted pickle
        out.modules.append((path, f"{type(obj).__module__}.{type(obj).__qualname__}"))
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        if _is_optimizer_state(obj):
            out.optimizers.append(_optimizer_info(obj, path))
            state = obj["state"]
            for pid, pstate in state.items():
                _walk(pstate, _join(_join(path, "state"), pid), out, Group.OPTIMIZER, depth + 2, seen)
            return
        if group is not Group.OPTIMIZER and _is_state_dict(obj):
            out.state_dicts.append((path, obj))
        for k, v in obj.items():
            _walk(v, _join(path, k), out, group, depth + 1, seen)
        return
    if isinstance(obj, (list, tuple)) and _contains_tensor(obj):
        for i, v in enumerate(obj):
            _walk(v, _join(path, i), out, group, depth + 1, seen)
        return
    if len(out.other) < _MAX_OTHER:
        out.other[path or "(root)"] = _json_safe(obj)


def _optimizer_info(sd: Mapping[str, Any], path: str) -> OptimizerInfo:
    groups: list[dict[str, Any]] = []
    names: dict[int, str] = {}
    for i, g in enumerate(sd["param_groups"]):
        ids = [int(p) for p in g["params"] if isinstance(p, int)]
        hyper = {str(k): _json_safe(v) for k, v in g.items() if k not in ("params", "param_names")}
        pnames = g.get("param_names")
        if isinstance(pnames, list) and len(pnames) == len(ids):
            names.update({pid: str(n) for pid, n in zip(ids, pnames, strict=True)})
        groups.append({"index": i, "params": ids, **hyper})
    group_of = {pid: g["index"] for g in groups for pid in g["params"]}
    params: list[ParamState] = []
    state = sd["state"]
    for pid in [pid for g in groups for pid in g["params"]]:
        pstate = state.get(pid, state.get(str(pid), {}))
        tensors: dict[str, str] = {}
        values: dict[str, Any] = {}
        if isinstance(pstate, Mapping):
            for k, v in pstate.items():
                if _is_tensorish(v):
                    tensors[str(k)] = _join(_join(_join(path, "state"), pid), k)
                else:
                    values[str(k)] = _json_safe(v)
        params.append(ParamState(pid, group_of[pid], names.get(pid), tensors, values))
    return OptimizerInfo(path, groups, params, "param_names" if names else None)


def _pick_state_dict(walk: _Walk) -> str | None:
    """Which state_dict load_state_dict would get: the root, a conventional name, else the largest."""
    if not walk.state_dicts:
        return None
    by_path = dict(walk.state_dicts)
    if "" in by_path:
        return ""
    for name in STATE_DICT_NAMES:
        if name in by_path:
            return name
    return max(walk.state_dicts, key=lambda item: len(item[1]))[0]


# ---------------------------------------------------------------------------
# Sources: where tensors are materialised from


class _Source:
    def tensor(self, key: str) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class _ObjectSource(_Source):
    """Tensors already loaded (mmap-backed for torch zip archives)."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self._tensors = tensors

    def tensor(self, key: str) -> torch.Tensor:
        return self._tensors[key]


class _TorchZipSource(_Source):
    """``torch.load(mmap=True, weights_only=...)`` on first use: storages are mapped, not read."""

    def __init__(self, path: Path, trusted: bool) -> None:
        self._path = path
        self._trusted = trusted
        self._tensors: dict[str, torch.Tensor] | None = None
        self._lock = threading.Lock()

    def tensor(self, key: str) -> torch.Tensor:
        with self._lock:
            if self._tensors is None:
                obj = _torch_load(self._path, trusted=self._trusted, mmap=True)
                walk = _Walk()
                _walk(obj, "", walk, Group.OTHER)
                self._tensors = walk.tensors
        return self._tensors[key]

    def close(self) -> None:
        self._tensors = None


class _SafetensorsSource(_Source):
    """One copy-on-write mmap per file; a tensor is a view of its bytes (read when touched)."""

    def __init__(self, headers: Sequence[SafetensorsHeader], where: Mapping[str, int]) -> None:
        self._headers = list(headers)
        self._where = where  # key -> index into headers
        self._maps: dict[int, mmap.mmap] = {}
        self._lock = threading.Lock()

    def _map(self, i: int) -> mmap.mmap:
        with self._lock:
            mm = self._maps.get(i)
            if mm is None:
                with self._headers[i].path.open("rb") as f:
                    # ACCESS_COPY: writable for torch.frombuffer, but never written back to the file
                    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
                self._maps[i] = mm
            return mm

    def tensor(self, key: str) -> torch.Tensor:
        i = self._where[key]
        entry = self._headers[i].entries[key]
        numel = math.prod(entry.shape)
        if numel == 0:
            return torch.empty(entry.shape, dtype=entry.dtype)
        if self._headers[i].path.stat().st_size < entry.end:
            raise UnreadableCheckpoint(f"{self._headers[i].path.name} shrank since it was opened", rule="offsets")
        flat = torch.frombuffer(self._map(i), dtype=entry.dtype, count=numel, offset=entry.begin)
        return flat.reshape(entry.shape)

    def close(self) -> None:
        # mmaps that tensors still view cannot be closed; dropping them lets GC do it
        self._maps.clear()


# ---------------------------------------------------------------------------
# The checkpoint


@dataclass(eq=False)
class Checkpoint:
    """One opened checkpoint: metadata up front, tensors on demand."""

    id: str
    name: str
    path: Path
    format: CheckpointFormat
    files: list[Path]
    file_bytes: int
    tensors: dict[str, TensorInfo]
    other: dict[str, Any]
    optimizers: list[OptimizerInfo]
    state_dict_path: str | None  # key path of the model state_dict, "" = the whole file
    state_dict_metadata: dict[str, Any] | None  # the state_dict's _metadata (module versions)
    state_dict_extra: dict[str, str]  # non-tensor entries of that state_dict: key -> type repr
    trusted: bool
    notes: list[str]
    open_ms: float
    source: _Source = field(repr=False)
    uploaded: bool = False
    # ``_extra_state`` values (plain objects built from allowed globals only) that set_extra_state gets on load
    extra_state_values: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- the model state_dict, keyed as load_state_dict sees it

    def state_dict_keys(self) -> dict[str, TensorInfo]:
        """The state_dict's tensors by their own keys (``fc1.weight``), in file order."""
        if self.state_dict_path is None:
            return {}
        prefix = self.state_dict_path + SEP if self.state_dict_path else ""
        return {
            info.key[len(prefix) :]: info
            for info in self.tensors.values()
            if info.group is Group.MODEL and info.key.startswith(prefix)
        }

    def tensor(self, key: str) -> torch.Tensor:
        """Materialise one tensor by its full key path (memory-mapped where the format allows)."""
        if key not in self.tensors:
            raise NotFound(f"checkpoint {self.id!r} has no tensor {key!r}", tensor=key)
        try:
            return self.source.tensor(key)
        except InspectError:
            raise
        except Exception as err:  # a file damaged after it was listed: a precise 422, never a 500
            raise UnreadableCheckpoint(f"cannot read tensor {key!r} from {self.name}: {_first_line(err)}", tensor=key) from None

    def state_dict_tensor(self, key: str) -> torch.Tensor:
        prefix = self.state_dict_path + SEP if self.state_dict_path else ""
        return self.tensor(prefix + key)

    @property
    def optimizer(self) -> OptimizerInfo | None:
        return self.optimizers[0] if self.optimizers else None

    def by_dtype(self) -> dict[str, dict[str, int]]:
        """Tensors, elements and bytes per dtype (aliases of one storage region counted once)."""
        out: dict[str, dict[str, int]] = {}
        seen: set[tuple[str, tuple[int, ...]]] = set()
        for info in self.tensors.values():
            row = out.setdefault(info.dtype, {"tensors": 0, "numel": 0, "bytes": 0})
            row["tensors"] += 1
            if info.storage is not None:
                if (info.storage, info.shape) in seen:
                    continue
                seen.add((info.storage, info.shape))
            row["numel"] += info.numel
            row["bytes"] += info.bytes
        return out

    def aliases(self) -> list[list[str]]:
        """Keys that are views of the same stored bytes (tied weights saved by torch.save)."""
        groups: dict[tuple[str, tuple[int, ...]], list[str]] = {}
        for info in self.tensors.values():
            if info.storage is not None:
                groups.setdefault((info.storage, info.shape), []).append(info.key)
        return [keys for keys in groups.values() if len(keys) > 1]

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "format": str(self.format),
            "file_bytes": self.file_bytes,
            "tensor_count": len(self.tensors),
            "tensor_bytes": sum(row["bytes"] for row in self.by_dtype().values()),
            "has_optimizer": bool(self.optimizers),
            "trusted": self.trusted,
            "uploaded": self.uploaded,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "path": str(self.path),
            "files": [str(p) for p in self.files],
            "tensors": [info.to_dict() for info in self.tensors.values()],
            "state_dict_path": self.state_dict_path,
            "by_dtype": self.by_dtype(),
            "aliases": self.aliases(),
            "other": self.other,
            "optimizer": self.optimizer.to_dict() if self.optimizer else None,
            "optimizers": [o.to_dict() for o in self.optimizers],
            "notes": self.notes,
            "open_ms": round(self.open_ms, 3),
        }

    def close(self) -> None:
        self.source.close()


# ---------------------------------------------------------------------------
# Opening


def _torch_load(path: Path, *, trusted: bool, mmap: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise UnsafeCheckpoint(
                f"{path.name}: refused by torch.load(weights_only=True): {_first_line(err)}",
                rule="weights_only",
            ) from None
        raise UnreadableCheckpoint(f"{path.name}: corrupt pickle: {_first_line(err)}", rule="format") from None
    except Exception as err:  # the file is untrusted input: whatever torch.load raises on it is a bad file, not a bug
        what = "cannot load the trusted pickle" if trusted else "torch.load failed"
        raise UnreadableCheckpoint(f"{path.name}: {what}: {_first_line(err)}", rule="format") from None


def _refuse(name: str, wanted: list[str]) -> UnsafeCheckpoint:
    shown = ", ".join(wanted[:12]) + (f" and {len(wanted) - 12} more" if len(wanted) > 12 else "")
    return UnsafeCheckpoint(
        f"{name} needs globals that torch.load(weights_only=True) does not allow: {shown}. "
        "It may be a whole pickled model or contain custom classes, and loading it could run code. "
        "If you trust this exact file, start torchscope with --trust-pickle FILE.",
        rule="weights_only",
        globals=wanted,
    )


def _sniff(path: Path) -> tuple[bytes, int]:
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InvalidRequest(f"{path} is a directory, not a checkpoint file") from None
    except OSError as err:
        raise UnreadableCheckpoint(f"cannot read {path}: {err.strerror or err}") from None
    return head, size


def open_checkpoint(
    path: str | os.PathLike[str],
    *,
    trusted_paths: Sequence[str | os.PathLike[str]] = (),
    cid: str = "",
    name: str | None = None,
) -> Checkpoint:
    """Open ``path`` for inspection; raises a precise InspectError for anything it cannot or will not read."""
    start = time.perf_counter()
    p = Path(path)
    if p.is_dir():
        raise InvalidRequest(f"{p} is a directory, not a checkpoint file")
    head, size = _sniff(p)
    resolved = p.resolve()
    trusted = any(Path(t).resolve() == resolved for t in trusted_paths)
    label = name or p.name
    if size == 0:
        raise UnreadableCheckpoint(f"{label} is empty (0 bytes)", rule="format")
    kw: dict[str, Any]
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        kw = _open_torch_zip(p, label, trusted)
    elif head[:4] == b"\x80\x02\x8a\x0a" and int.from_bytes(head[4:14], "little") == _LEGACY_MAGIC:
        kw = _open_torch_legacy(p, label, trusted)
    elif head[:1] == b"\x80":
        with p.open("rb") as f:
            wanted = [g for g in pickle_globals(f) if g not in allowed_globals()]
        if wanted:
            raise _refuse(label, wanted)
        raise UnreadableCheckpoint(
            f"{label} is a plain pickle (pickle.dump), not a torch.save archive or safetensors file",
            rule="format",
        )
    elif head.lstrip()[:1] == b"{" or p.suffix == ".json":
        kw = _open_sharded(p, label)
    elif len(head) >= 9 and head[8:9] == b"{":
        header = read_safetensors_header(p)
        kw = _from_safetensors([header], label, CheckpointFormat.SAFETENSORS, {k: 0 for k in header.entries})
        kw["other"] = {f"__metadata__{SEP}{k}": v for k, v in header.metadata.items()}
    else:
        raise UnreadableCheckpoint(
            f"{label} is not a checkpoint: it starts with bytes {head[:8].hex(' ')}, which is neither a "
            "torch.save zip archive, nor safetensors, nor a safetensors index",
            rule="format",
        )
    notes: list[str] = kw.pop("notes", [])
    fmt: CheckpointFormat = kw["format"]
    suffix = p.suffix.lower()
    if fmt in (CheckpointFormat.TORCH, CheckpointFormat.TORCH_LEGACY) and suffix == ".safetensors":
        notes.append(f"named {suffix} but holds a torch.save archive")
    if fmt is CheckpointFormat.SAFETENSORS and suffix in (".pt", ".pth", ".ckpt"):
        notes.append(f"named {suffix} but holds safetensors")
    files: list[Path] = kw.pop("files", [p])
    return Checkpoint(
        id=cid or slug(p.name),
        name=label,
        path=p,
        files=files,
        file_bytes=sum(f.stat().st_size for f in files),
        trusted=trusted,
        notes=notes,
        open_ms=(time.perf_counter() - start) * 1000,
        **kw,
    )


def _assemble(
    obj: Any, source: _Source, fmt: CheckpointFormat, notes: list[str], walk: _Walk | None = None
) -> dict[str, Any]:
    if walk is None:
        walk = _Walk()
        _walk(obj, "", walk, Group.OTHER)
    sd_path = _pick_state_dict(walk)
    sd_map = dict(walk.state_dicts).get(sd_path) if sd_path is not None else None
    prefix = (sd_path + SEP) if sd_path else ""
    tensors: dict[str, TensorInfo] = {}
    for key, t in walk.tensors.items():
        shape, dtype, storage = _tensor_meta(t)
        numel = math.prod(shape)
        group = walk.groups[key]
        if sd_map is not None and group is Group.OTHER and key.startswith(prefix) and key[len(prefix):] in sd_map:
            group = Group.MODEL
        tensors[key] = TensorInfo(key, shape, dtype_name(dtype), numel, numel * _itemsize(dtype), group, storage)
    extra: dict[str, str] = {}
    extra_values: dict[str, Any] = {}
    metadata = None
    if sd_map is not None:
        extra = {k: repr(type(v)) for k, v in sd_map.items() if not _is_tensorish(v)}
        extra_values = {
            k: v for k, v in sd_map.items() if k.endswith("_extra_state") and not _contains_tensor(v)
        }
        md = getattr(sd_map, "_metadata", None)
        if isinstance(md, Mapping):  # {module prefix: {"version": n}}, read by _load_from_state_dict
            metadata = {str(k): dict(v) for k, v in md.items() if isinstance(v, Mapping)}
    if walk.modules:
        notes.append("pickled nn.Module(s): " + ", ".join(f"{c} at {p or '(root)'}" for p, c in walk.modules))
    if sd_path is None and tensors:
        notes.append("no flat state_dict found: compare and load are not available")
    return {
        "format": fmt,
        "tensors": tensors,
        "other": walk.other,
        "optimizers": walk.optimizers,
        "state_dict_path": sd_path,
        "state_dict_metadata": metadata,
        "state_dict_extra": extra,
        "extra_state_values": extra_values,
        "source": source,
        "notes": notes,
    }


def _open_torch_zip(p: Path, label: str, trusted: bool) -> dict[str, Any]:
    try:
        zf = zipfile.ZipFile(p)
    # a damaged central directory raises more than BadZipFile (bad UTF-8 names, struct and EOF errors)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, struct.error, NotImplementedError) as err:
        raise UnreadableCheckpoint(
            f"{label} starts like a zip archive (torch.save) but cannot be read: {_first_line(err)} "
            "(truncated or corrupt file)",
            rule="format",
        ) from None
    with zf:
        infos = {i.filename: i for i in zf.infolist()}
        pkls = [n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1] or [n for n in infos if n == "data.pkl"]
        if not pkls:
            if any(n.endswith("constants.pkl") for n in infos):
                raise UnreadableCheckpoint(f"{label} is a TorchScript archive (torch.jit.save), not torch.save", rule="format")
            raise UnreadableCheckpoint(f"{label} is a zip archive without data.pkl: not written by torch.save", rule="format")
        pkl = pkls[0]
        root = pkl[: -len("data.pkl")]
        try:
            data = zf.read(pkl)
            byteorder = zf.read(root + "byteorder") if root + "byteorder" in infos else b"little"
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError, zlib.error) as err:
            raise UnreadableCheckpoint(f"{label}: data.pkl cannot be read: {_first_line(err)}", rule="format") from None
    allowed = allowed_globals()
    notes: list[str] = []
    try:
        # The restricted unpickler is the gate: find_class refuses anything weights_only would.
        obj = _StubUnpickler(io.BytesIO(data), allowed).load()
    except _Disallowed as refused:
        if trusted:
            notes.append("opened with --trust-pickle: unpickled with weights_only=False")
            obj = _torch_load(p, trusted=True, mmap=True)
            return _assemble(obj, _ObjectSource(_all_tensors(obj)), CheckpointFormat.TORCH, notes)
        # Only now scan the opcodes (slower, pure Python) to name every global the file wants.
        wanted = [g for g in pickle_globals(data) if g not in allowed]
        raise _refuse(label, wanted or [str(refused).removeprefix("global ").removesuffix(" is not allowed")]) from None
    except _NeedsTorch as need:
        # An allowed construct we do not stub: torch's own weights_only loader reads it (mmap: no data read).
        notes.append(f"metadata read by torch.load(weights_only=True, mmap=True) ({need})")
        obj = _torch_load(p, trusted=False, mmap=True)
        return _assemble(obj, _ObjectSource(_all_tensors(obj)), CheckpointFormat.TORCH, notes)
    except pickle.UnpicklingError as err:
        raise UnreadableCheckpoint(f"{label}: data.pkl is not a valid torch.save pickle: {_first_line(err)}", rule="format") from None
    except Exception as err:  # a hostile or corrupt pickle can raise anything from the C unpickler
        raise UnreadableCheckpoint(f"{label}: data.pkl is corrupt: {_first_line(err)}", rule="format") from None
    if byteorder != b"little":
        notes.append(f"byteorder {byteorder.decode(errors='replace')}: torch.load swaps bytes on read")
    walk = _Walk()
    _walk(obj, "", walk, Group.OTHER)
    _check_storages(walk, infos, root, label)
    return _assemble(obj, _TorchZipSource(p, trusted=False), CheckpointFormat.TORCH, notes, walk)


def _check_storages(walk: _Walk, infos: Mapping[str, zipfile.ZipInfo], root: str, label: str) -> None:
    """Each storage the pickle names must be in the archive with the size it claims."""
    for key, stub in walk.tensors.items():
        storage = stub.storage
        member = f"{root}data/{storage.key}"
        info = infos.get(member)
        if info is None:
            raise UnreadableCheckpoint(f"{label}: tensor {key!r} points at {member}, which the archive lacks", rule="format", tensor=key)
        if info.file_size != storage.nbytes:
            raise UnreadableCheckpoint(
                f"{label}: storage {member} holds {info.file_size} bytes but tensor {key!r} needs a storage of {storage.nbytes}",
                rule="format",
                tensor=key,
            )
        if stub.shape and all(s > 0 for s in stub.shape):
            extent = stub.offset + sum((s - 1) * st for s, st in zip(stub.shape, stub.stride, strict=False)) + 1
            if extent > storage.numel or stub.offset < 0:
                raise UnreadableCheckpoint(f"{label}: tensor {key!r} reaches past its storage", rule="format", tensor=key)


def _all_tensors(obj: Any) -> dict[str, torch.Tensor]:
    walk = _Walk()
    _walk(obj, "", walk, Group.OTHER)
    return walk.tensors


def _open_torch_legacy(p: Path, label: str, trusted: bool) -> dict[str, Any]:
    with p.open("rb") as f:
        # magic number, protocol version, sys_info, then the object itself
        wanted = [g for g in pickle_globals(f, max_pickles=4) if g not in allowed_globals()]
    if wanted and not trusted:
        raise _refuse(label, wanted)
    notes = ["legacy torch.save format (not a zip): tensors were loaded into memory"]
    obj = _torch_load(p, trusted=trusted, mmap=False)
    return _assemble(obj, _ObjectSource(_all_tensors(obj)), CheckpointFormat.TORCH_LEGACY, notes)


def _from_safetensors(
    headers: Sequence[SafetensorsHeader], label: str, fmt: CheckpointFormat, where: Mapping[str, int]
) -> dict[str, Any]:
    tensors: dict[str, TensorInfo] = {}
    model = Group.MODEL
    for key, i in where.items():
        e = headers[i].entries[key]
        nbytes = e.end - e.begin  # validated: exactly numel * itemsize
        tensors[key] = TensorInfo(key, e.shape, dtype_name(e.dtype), nbytes // e.dtype.itemsize, nbytes, model)
    return {
        "format": fmt,
        "tensors": tensors,
        "other": {},
        "optimizers": [],
        "state_dict_path": "" if tensors else None,
        "state_dict_metadata": None,
        "state_dict_extra": {},
        "source": _SafetensorsSource(headers, where),
        "files": [h.path for h in headers],
    }


_SHARD_NAME = re.compile(r"^[^/\\]+$")


def _open_sharded(p: Path, label: str) -> dict[str, Any]:
    try:
        index = json.loads(p.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableCheckpoint(f"{label} is not valid JSON: {_first_line(err)}", rule="format") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise UnreadableCheckpoint(f"{label} is JSON but not a safetensors index (no \"weight_map\")", rule="format")
    shard_names: list[str] = []
    for key, shard in weight_map.items():
        if not isinstance(shard, str) or not _SHARD_NAME.match(shard) or shard in (".", ".."):
            raise UnreadableCheckpoint(
                f"{label}: tensor {key!r} maps to {shard!r}; shards must be plain file names beside the index",
                rule="format",
                tensor=key,
            )
        if shard not in shard_names:
            shard_names.append(shard)
    headers: list[SafetensorsHeader] = []
    for shard in shard_names:
        shard_path = p.parent / shard
        if not shard_path.is_file():
            raise UnreadableCheckpoint(f"{label}: shard {shard} is missing", rule="format", file=shard)
        headers.append(read_safetensors_header(shard_path))
    where: dict[str, int] = {}
    for key, shard in weight_map.items():
        i = shard_names.index(shard)
        if key not in headers[i].entries:
            raise UnreadableCheckpoint(f"{label}: the index maps {key!r} to {shard}, whose header has no such tensor", rule="format", tensor=key)
        where[key] = i
    kw = _from_safetensors(headers, label, CheckpointFormat.SAFETENSORS_SHARDED, where)
    unlisted = sum(1 for i, h in enumerate(headers) for k in h.entries if where.get(k) != i)
    notes = [f"{len(headers)} shards"]
    if unlisted:
        notes.append(f"{unlisted} tensors in the shards are not in the index's weight_map (ignored, as loaders do)")
    kw["notes"] = notes
    metadata = index.get("metadata")
    kw["other"] = {f"metadata{SEP}{k}": _json_safe(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}
    kw["files"] = [p, *[h.path for h in headers]]
    return kw


def slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower()
    return s or "checkpoint"


# ---------------------------------------------------------------------------
# The store of opened checkpoints (lives on app.state.checkpoints)


@dataclass(frozen=True)
class OpenFailure:
    path: str
    message: str
    status: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "detail": self.message, "status": self.status}


class CheckpointStore:
    """Opened checkpoints by id, plus the files that could not be opened at startup."""

    def __init__(self, trusted_paths: Sequence[str | os.PathLike[str]] = ()) -> None:
        self._items: dict[str, Checkpoint] = {}
        self._lock = threading.RLock()
        self.trusted_paths = [Path(t) for t in trusted_paths]
        self.failures: list[OpenFailure] = []

    def _new_id(self, name: str) -> str:
        base = slug(name)
        cid, n = base, 2
        while cid in self._items:
            cid, n = f"{base}-{n}", n + 1
        return cid

    def open(self, path: str | os.PathLike[str], *, name: str | None = None, uploaded: bool = False) -> Checkpoint:
        """Open a file (trusted only if named with --trust-pickle; uploads never are)."""
        p = Path(path)
        with self._lock:
            cid = self._new_id(name or p.name)
            ckpt = open_checkpoint(p, trusted_paths=() if uploaded else self.trusted_paths, cid=cid, name=name)
            ckpt.uploaded = uploaded
            self._items[cid] = ckpt
            return ckpt

    def open_startup(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Open --checkpoint files; a refused or broken one is recorded, not fatal."""
        for path in paths:
            try:
                self.open(path)
            except InspectError as err:
                self.failures.append(OpenFailure(str(path), err.message, err.status))

    def get(self, cid: str) -> Checkpoint:
        try:
            return self._items[cid]
        except KeyError:
            raise NotFound(f"no checkpoint with id {cid!r}", checkpoint=cid) from None

    def remove(self, cid: str) -> None:
        with self._lock:
            self.get(cid).close()
            del self._items[cid]

    def __iter__(self) -> Iterator[Checkpoint]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        for ckpt in self:
            ckpt.close()


def resolve_in_data_dir(data_dir: Path | None, relpath: str) -> Path:
    """``relpath`` under ``data_dir``, refusing anything that escapes it (``..``, absolute paths, symlinks out)."""
    if data_dir is None:
        raise InvalidRequest("opening files by path needs torchscope started with --data-dir DIR", rule="data_dir")
    root = Path(data_dir).resolve()
    rel = Path(relpath)
    if not relpath or rel.is_absolute() or relpath.startswith(("/", "\\")):
        raise InvalidRequest(f"{relpath!r}: give a path relative to the data directory", rule="data_dir")
    target = (root / rel).resolve()
    if not target.is_relative_to(root):
        raise InvalidRequest(f"{relpath!r} is outside the data directory", rule="data_dir")
    if not target.exists():
        raise NotFound(f"no file {relpath!r} in the data directory")
    if not target.is_file():
        raise InvalidRequest(f"{relpath!r} is not a file", rule="data_dir")
    return target


def list_data_dir(data_dir: Path | None, *, limit: int = 500) -> list[dict[str, Any]]:
    """Checkpoint-like files under ``data_dir`` (no symlinks that leave it), relative paths."""
    if data_dir is None:
        return []
    root = Path(data_dir).resolve()
    out: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            if not fname.lower().endswith(CHECKPOINT_SUFFIXES):
                continue
            full = Path(dirpath) / fname
            real = full.resolve()
            if not real.is_relative_to(root) or not real.is_file():
                continue
            out.append({"path": full.relative_to(root).as_posix(), "bytes": real.stat().st_size})
            if len(out) >= limit:
                return out
    return out


def tensor_values(ckpt: Checkpoint, key: str) -> torch.Tensor:
    """A checkpoint tensor for statistics; meta tensors have no values."""
    t = ckpt.tensor(key)
    if t.device.type == "meta":
        raise NoValues(f"tensor {key!r} is on the meta device: it has no values", tensor=key)
    return t
