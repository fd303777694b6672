"""One opened checkpoint: metadata up front, tensors on demand."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from torchscope.inspect.checkpoints.optimizer import OptimizerInfo
from torchscope.inspect.checkpoints.records import (
    SEP,
    CheckpointFormat,
    Group,
    TensorInfo,
    UnreadableCheckpoint,
    first_line,
)
from torchscope.inspect.checkpoints.schedulers import SchedulerState
from torchscope.inspect.checkpoints.sources import Source
from torchscope.inspect.errors import InspectError, NotFound, NoValues

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
    source: Source = field(repr=False)
    uploaded: bool = False
    # ``_extra_state`` values (plain objects built from allowed globals only) that set_extra_state gets on load
    extra_state_values: dict[str, Any] = field(default_factory=dict, repr=False)
    schedulers: list[SchedulerState] = field(default_factory=list, repr=False)  # LR scheduler states, for "resume"
    _scalars: dict[str, int | float | None] = field(default_factory=dict, repr=False)  # 0-dim optimizer states read

    def scheduler(self, path: str) -> SchedulerState:
        """The LR scheduler state saved at ``path``."""
        for s in self.schedulers:
            if s.path == path:
                return s
        known = ", ".join(repr(s.path) for s in self.schedulers) or "none"
        raise NotFound(f"checkpoint {self.id!r} has no LR scheduler state at {path!r} (it has: {known})", path=path)

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
            raise UnreadableCheckpoint(f"cannot read tensor {key!r} from {self.name}: {first_line(err)}", tensor=key) from None

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

    def optimizer_dict(self, opt: OptimizerInfo, limit: int = 4096) -> dict[str, Any]:
        """``opt.to_dict()`` with the values of its scalar state tensors (Adam's ``step``, NAdam's ``mu_product``)
        and each group's step count: torch keeps them as 0-dim tensors, so the listing alone shows only a key."""
        out = opt.to_dict()
        read = 0
        for p in out["params"]:
            for v in p["state"].values():
                info = self.tensors.get(v["key"]) if isinstance(v, dict) and "key" in v else None
                if info is None or info.shape != () or read >= limit:
                    continue
                read += 1
                value = self._scalar(info.key)
                if value is not None:
                    v["value"] = value
        by_id = {p["id"]: p["state"].get("step") for p in out["params"]}
        for g in out["param_groups"]:
            steps = []
            for pid in g["params"]:
                st = by_id.get(pid)
                v = st.get("value") if isinstance(st, dict) else st
                if isinstance(v, int | float) and not isinstance(v, bool):
                    steps.append(v)
            if steps:
                lo, hi = min(steps), max(steps)
                g["step"] = int(lo) if lo == hi and float(lo).is_integer() else [lo, hi]
        return out

    def _scalar(self, key: str) -> int | float | None:
        if key not in self._scalars:
            value: int | float | None = None
            try:
                t = self.tensor(key)
                if t.device.type != "meta" and t.numel() == 1:
                    v = t.item()
                    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
                        value = int(v)  # Adam's step is a float32 tensor holding a count
                    elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                        value = v
            except (InspectError, RuntimeError, ValueError):
                value = None
            self._scalars[key] = value
        return self._scalars[key]

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
            # What the user knows the file by (an upload's own name, a --data-dir relative path),
            # never the server's path (issue 9).
            "path": self.name,
            "files": self.file_labels(),
            "tensors": [info.to_dict() for info in self.tensors.values()],
            "state_dict_path": self.state_dict_path,
            "by_dtype": self.by_dtype(),
            "aliases": self.aliases(),
            "other": self.other,
            "optimizer": self.optimizer_dict(self.optimizer) if self.optimizer else None,
            "optimizers": [self.optimizer_dict(o) for o in self.optimizers],
            "schedulers": [sc.summary() for sc in self.schedulers],
            "notes": self.notes,
            "open_ms": round(self.open_ms, 3),
        }

    def file_labels(self) -> list[str]:
        """The files read, named like ``name``: the shards of an index beside the index's own label."""
        folder = self.name.rpartition("/")[0]
        return [self.name] + [f"{folder}/{f.name}" if folder else f.name for f in self.files[1:]]

    def close(self) -> None:
        self.source.close()


def tensor_values(ckpt: Checkpoint, key: str) -> torch.Tensor:
    """A checkpoint tensor for statistics; meta tensors have no values."""
    t = ckpt.tensor(key)
    if t.device.type == "meta":
        raise NoValues(f"tensor {key!r} is on the meta device: it has no values", tensor=key)
    return t
