"""Safetensors files and sharded sets: headers validated against the file, tensors as mmap views."""

from __future__ import annotations

import itertools
import math
import mmap
import re
import struct
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from torchscope.inspect.budgets import JsonBudgetError, load_json
from torchscope.inspect.checkpoints.records import (
    SEP,
    CheckpointFormat,
    Group,
    TensorInfo,
    UnreadableCheckpoint,
    dtype_name,
    first_line,
)
from torchscope.inspect.checkpoints.sources import Source
from torchscope.inspect.checkpoints.values import json_safe

# The safetensors library allows 100 MB headers; a 100k-tensor header is ~10 MB, and parsing a
# hostile 100 MB of JSON takes gigabytes. Index files hold one short line per tensor.
MAX_HEADER = 32 * 1024 * 1024
MAX_INDEX_BYTES = 32 * 1024 * 1024

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


def read_safetensors_header(path: Path, label: str | None = None) -> SafetensorsHeader:
    """Parse and validate a safetensors header within budgets; never reads tensor data."""
    name = label or path.name
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
        if n > MAX_HEADER:
            raise UnreadableCheckpoint(f"{name}: header of {n:,} bytes exceeds the {MAX_HEADER:,}-byte limit", rule="budget")
        raw = f.read(n)
    try:
        # entries nest 3 deep ({"key": {"shape": [..]}}): a deeper header is refused, not recursed into
        header = load_json(raw.decode("utf-8"), what="the safetensors header", max_depth=4)
    except JsonBudgetError as err:
        raise UnreadableCheckpoint(f"{name}: {err}", rule="budget") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise UnreadableCheckpoint(f"{name}: the safetensors header is not valid JSON: {first_line(err)}", rule="format") from None
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


class SafetensorsSource(Source):
    """One copy-on-write mmap per file; a tensor is a view of its bytes (read when touched)."""

    def __init__(self, headers: Sequence[SafetensorsHeader], where: Mapping[str, int]) -> None:
        self._headers = list(headers)
        self._where = where  # key -> index into headers
        self._maps: dict[int, mmap.mmap] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:  # sent back from the worker that listed the file
        return {"headers": self._headers, "where": self._where}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["headers"], state["where"])  # type: ignore[misc]

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


def from_safetensors(
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
        "source": SafetensorsSource(headers, where),
        "files": [h.path for h in headers],
    }


_SHARD_NAME = re.compile(r"^[^/\\]+$")


def open_sharded(p: Path, label: str) -> dict[str, Any]:
    if p.stat().st_size > MAX_INDEX_BYTES:
        raise UnreadableCheckpoint(f"{label}: an index of {p.stat().st_size:,} bytes is over the {MAX_INDEX_BYTES:,}-byte limit", rule="budget")
    try:
        index = load_json(p.read_bytes().decode("utf-8"), what=label, max_depth=8)
    except JsonBudgetError as err:
        raise UnreadableCheckpoint(str(err), rule="budget") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise UnreadableCheckpoint(f"{label} is not valid JSON: {first_line(err)}", rule="format") from None
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
    folder = p.resolve().parent
    prefix = label.rpartition("/")[0]
    for shard in shard_names:
        shard_label = f"{prefix}/{shard}" if prefix else shard
        try:
            # Resolved: a shard that is a symlink out of the index's folder is refused (issue 9).
            shard_path = (p.parent / shard).resolve()
            inside = shard_path.is_relative_to(folder)
            is_file = inside and shard_path.is_file()
        except (OSError, RuntimeError, ValueError):  # symlink loop, name too long, NUL byte
            raise UnreadableCheckpoint(f"{label}: shard {shard[:200]!r} cannot be resolved", rule="path", file=shard[:200]) from None
        if not inside:
            raise UnreadableCheckpoint(
                f"{label}: shard {shard!r} leads outside the index's folder (a symlink?); refused", rule="path", file=shard
            )
        if not is_file:
            raise UnreadableCheckpoint(f"{label}: shard {shard} is missing", rule="format", file=shard)
        headers.append(read_safetensors_header(shard_path, shard_label))
    where: dict[str, int] = {}
    for key, shard in weight_map.items():
        i = shard_names.index(shard)
        if key not in headers[i].entries:
            raise UnreadableCheckpoint(f"{label}: the index maps {key!r} to {shard}, whose header has no such tensor", rule="format", tensor=key)
        where[key] = i
    kw = from_safetensors(headers, label, CheckpointFormat.SAFETENSORS_SHARDED, where)
    unlisted = sum(1 for i, h in enumerate(headers) for k in h.entries if where.get(k) != i)
    notes = [f"{len(headers)} shards"]
    if unlisted:
        notes.append(f"{unlisted} tensors in the shards are not in the index's weight_map (ignored, as loaders do)")
    kw["notes"] = notes
    metadata = index.get("metadata")
    kw["other"] = {f"metadata{SEP}{k}": json_safe(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}
    kw["files"] = [p, *[h.path for h in headers]]
    return kw
