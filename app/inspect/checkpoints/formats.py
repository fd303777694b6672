"""Opening a file: sniff its format, list it safely, assemble the Checkpoint."""

from __future__ import annotations

import io
import math
import mmap
import os
import pickle
import struct
import time
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torchscope.inspect.checkpoints.budgets import (
    EXPANSION_SLACK,
    MAX_EXPANSION,
    read_member,
    scan_pickle,
    zip_entry_count,
)
from torchscope.inspect.checkpoints.checkpoint import Checkpoint
from torchscope.inspect.checkpoints.records import (
    SEP,
    CheckpointFormat,
    Group,
    TensorInfo,
    UnreadableCheckpoint,
    dtype_name,
    first_line,
    slug,
)
from torchscope.inspect.checkpoints.safetensors_files import (
    from_safetensors,
    open_sharded,
    read_safetensors_header,
)
from torchscope.inspect.checkpoints.sources import ObjectSource, Source, TorchZipSource
from torchscope.inspect.checkpoints.unpickler import (
    Disallowed,
    NeedsTorch,
    StubUnpickler,
    allowed_globals,
    itemsize,
    pickle_globals,
    refuse,
    torch_load,
)
from torchscope.inspect.checkpoints.values import contains_tensor, is_tensorish, tensor_meta
from torchscope.inspect.checkpoints.walk import Walk, all_tensors, pick_state_dict, walk_into
from torchscope.inspect.errors import InvalidRequest, NotFound

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

def _sniff(path: Path, label: str) -> tuple[bytes, int]:
    # Messages name the file as the user knows it (label), never the server's path (issue 9).
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise NotFound(f"no such file: {label}") from None
    except IsADirectoryError:
        raise InvalidRequest(f"{label} is a directory, not a checkpoint file") from None
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the name
        raise UnreadableCheckpoint(f"cannot read {label}: {getattr(err, 'strerror', None) or 'invalid file name'}") from None
    return head, size


def _looks_like_safetensors(p: Path, head: bytes, size: int) -> bool:
    """safetensors: an 8-byte little-endian length n, then a JSON object of exactly n bytes (space-padded)."""
    if len(head) < 9 or head[8:9] != b"{":
        return False
    n = int.from_bytes(head[:8], "little")
    if n < 2 or n > size - 8:
        return False
    with p.open("rb") as f:
        f.seek(8 + max(n - 64, 0))
        tail = f.read(min(n, 64))
    return tail.rstrip(b" \t\r\n").endswith(b"}")


def open_checkpoint(
    path: str | os.PathLike[str],
    *,
    trusted_paths: Sequence[str | os.PathLike[str]] = (),
    cid: str = "",
    name: str | None = None,
    allow_shards: bool = True,
) -> Checkpoint:
    """Open ``path`` for inspection; raises a precise InspectError for anything it cannot or will not read.

    ``name`` is what messages call the file (an upload's own name, a --data-dir relative path);
    ``allow_shards=False`` refuses a sharded index (an uploaded index has no shards beside it).
    """
    start = time.perf_counter()
    p = Path(path)
    label = name or p.name
    head, size = _sniff(p, label)
    resolved = p.resolve()
    trusted = any(Path(t).resolve() == resolved for t in trusted_paths)
    if size == 0:
        raise UnreadableCheckpoint(f"{label} is empty (0 bytes)", rule="format")
    kw: dict[str, Any]
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        kw = _open_torch_zip(p, label, trusted)
    elif head[:4] == b"\x80\x02\x8a\x0a" and int.from_bytes(head[4:14], "little") == _LEGACY_MAGIC:
        kw = _open_torch_legacy(p, label, trusted)
    elif _looks_like_safetensors(p, head, size):
        # Structure, not first bytes: a safetensors length such as 0x7B20 starts with the bytes
        # " {" and one such as 0x0480 with 0x80, a pickle's first byte (issue 9).
        kw = _open_safetensors(p, label)
    elif head[:1] == b"\x80":
        with p.open("rb") as f:
            wanted = [g for g in pickle_globals(f) if g not in allowed_globals()]
        if wanted:
            raise refuse(label, wanted)
        raise UnreadableCheckpoint(
            f"{label} is a plain pickle (pickle.dump), not a torch.save archive or safetensors file",
            rule="format",
        )
    elif head.lstrip()[:1] == b"{" or p.suffix == ".json":
        if not allow_shards:
            raise UnreadableCheckpoint(
                f"{label} is a sharded-safetensors index: its shards must sit beside it, so open it from "
                "--data-dir (or the command line) instead of uploading it",
                rule="format",
            )
        kw = open_sharded(p, label)
    elif len(head) >= 9 and head[8:9] == b"{":  # safetensors-like but broken: its header reader says how
        kw = _open_safetensors(p, label)
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


def _open_safetensors(p: Path, label: str) -> dict[str, Any]:
    header = read_safetensors_header(p, label)
    kw = from_safetensors([header], label, CheckpointFormat.SAFETENSORS, {k: 0 for k in header.entries})
    kw["other"] = {f"__metadata__{SEP}{k}": v for k, v in header.metadata.items()}
    return kw


def _assemble(
    obj: Any, source: Source, fmt: CheckpointFormat, notes: list[str], walk: Walk | None = None
) -> dict[str, Any]:
    if walk is None:
        walk = Walk()
        walk_into(obj, "", walk, Group.OTHER)
    sd_path = pick_state_dict(walk)
    sd_map = dict(walk.state_dicts).get(sd_path) if sd_path is not None else None
    prefix = (sd_path + SEP) if sd_path else ""
    tensors: dict[str, TensorInfo] = {}
    for key, t in walk.tensors.items():
        shape, dtype, storage = tensor_meta(t)
        numel = math.prod(shape)
        group = walk.groups[key]
        if sd_map is not None and group is Group.OTHER and key.startswith(prefix) and key[len(prefix):] in sd_map:
            group = Group.MODEL
        tensors[key] = TensorInfo(key, shape, dtype_name(dtype), numel, numel * itemsize(dtype), group, storage)
    extra: dict[str, str] = {}
    extra_values: dict[str, Any] = {}
    metadata = None
    if sd_map is not None:
        extra = {k: repr(type(v)) for k, v in sd_map.items() if not is_tensorish(v)}
        extra_values = {
            k: v for k, v in sd_map.items() if k.endswith("_extra_state") and not contains_tensor(v)
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
        "schedulers": walk.schedulers,
        "state_dict_path": sd_path,
        "state_dict_metadata": metadata,
        "state_dict_extra": extra,
        "extra_state_values": extra_values,
        "source": source,
        "notes": notes,
    }


def _open_torch_zip(p: Path, label: str, trusted: bool) -> dict[str, Any]:
    try:
        with p.open("rb") as raw:
            zip_entry_count(raw, label)  # before zipfile builds one object per entry
        zf = zipfile.ZipFile(p)
    # a damaged central directory raises more than BadZipFile (bad UTF-8 names, struct and EOF errors)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, struct.error, NotImplementedError) as err:
        raise UnreadableCheckpoint(
            f"{label} starts like a zip archive (torch.save) but cannot be read: {first_line(err)} "
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
            data = read_member(zf, infos[pkl], label)  # refused before inflating when over the budget
            byteorder = read_member(zf, infos[root + "byteorder"], label, 64) if root + "byteorder" in infos else b"little"
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError, zlib.error) as err:
            raise UnreadableCheckpoint(f"{label}: data.pkl cannot be read: {first_line(err)}", rule="format") from None
    if not trusted:
        # Prove the C unpickler's work is bounded (depth, memo, objects) before it runs: a tuple
        # nested a million deep as a dict key is hashed recursively in C and kills the process.
        scan_pickle(data, label)
    allowed = allowed_globals()
    notes: list[str] = []
    try:
        # The restricted unpickler is the gate: find_class refuses anything weights_only would.
        obj = StubUnpickler(io.BytesIO(data), allowed).load()
    except Disallowed as refused:
        if trusted:
            notes.append("opened with --trust-pickle: unpickled with weights_only=False")
            obj = torch_load(p, trusted=True, mmap=True)
            return _assemble(obj, ObjectSource(all_tensors(obj)), CheckpointFormat.TORCH, notes)
        # Only now scan the opcodes (slower, pure Python) to name every global the file wants.
        wanted = [g for g in pickle_globals(data) if g not in allowed]
        raise refuse(label, wanted or [str(refused).removeprefix("global ").removesuffix(" is not allowed")]) from None
    except NeedsTorch as need:
        # An allowed construct we do not stub: torch's own weights_only loader reads it (mmap: no data read).
        notes.append(f"metadata read by torch.load(weights_only=True, mmap=True) ({need})")
        obj = torch_load(p, trusted=False, mmap=True)
        return _assemble(obj, ObjectSource(all_tensors(obj)), CheckpointFormat.TORCH, notes)
    except pickle.UnpicklingError as err:
        raise UnreadableCheckpoint(f"{label}: data.pkl is not a valid torch.save pickle: {first_line(err)}", rule="format") from None
    except Exception as err:  # a hostile or corrupt pickle can raise anything from the C unpickler
        raise UnreadableCheckpoint(f"{label}: data.pkl is corrupt: {first_line(err)}", rule="format") from None
    if byteorder != b"little":
        notes.append(f"byteorder {byteorder.decode(errors='replace')}: torch.load swaps bytes on read")
    walk = Walk()
    walk_into(obj, "", walk, Group.OTHER)
    _check_storages(walk, infos, root, label)
    return _assemble(obj, TorchZipSource(p, trusted=False), CheckpointFormat.TORCH, notes, walk)


def _check_storages(walk: Walk, infos: Mapping[str, zipfile.ZipInfo], root: str, label: str) -> None:
    """Each storage the pickle names must be in the archive with the size it claims."""
    for key, stub in walk.tensors.items():
        storage = stub.storage
        member = f"{root}data/{storage.key}"
        info = infos.get(member)
        if info is None:
            raise UnreadableCheckpoint(f"{label}: tensor {key!r} points at {member}, which the archive lacks", rule="format", tensor=key)
        if info.compress_type != zipfile.ZIP_STORED:
            # torch.save stores storages uncompressed (mmap needs it); a compressed one can be a bomb.
            raise UnreadableCheckpoint(
                f"{label}: storage {member} is compressed; torch.save never compresses storages", rule="format", tensor=key
            )
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
            numel = math.prod(stub.shape)
            if numel > MAX_EXPANSION * storage.numel + EXPANSION_SLACK:
                # Stride 0 or overlapping strides: 1.5 KB on disk can claim a 16384 x 16384 tensor, and
                # every statistic of it would allocate gigabytes. Refused, named (issue 9).
                raise UnreadableCheckpoint(
                    f"{label}: tensor {key!r} of shape {list(stub.shape)} views {numel:,} elements of a storage that "
                    f"holds {storage.numel:,} (stride {list(stub.stride)}); more than {MAX_EXPANSION}x the stored "
                    "elements is refused",
                    rule="storage",
                    tensor=key,
                )


def _open_torch_legacy(p: Path, label: str, trusted: bool) -> dict[str, Any]:
    with p.open("rb") as f:
        # magic number, protocol version, sys_info, then the object itself
        wanted = [g for g in pickle_globals(f, max_pickles=4) if g not in allowed_globals()]
    if wanted and not trusted:
        raise refuse(label, wanted)
    if not trusted:  # the same budgets as a zip archive's data.pkl, for each of the leading pickles
        with p.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = 0
            for _ in range(4):
                pos = scan_pickle(mm, label, start=pos).end
    notes = ["legacy torch.save format (not a zip): tensors were loaded into memory"]
    obj = torch_load(p, trusted=trusted, mmap=False)
    return _assemble(obj, ObjectSource(all_tensors(obj)), CheckpointFormat.TORCH_LEGACY, notes)
