"""One opened checkpoint: metadata up front, tensors on demand."""

from __future__ import annotations

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


def tensor_values(ckpt: Checkpoint, key: str) -> torch.Tensor:
    """A checkpoint tensor for statistics; meta tensors have no values."""
    t = ckpt.tensor(key)
    if t.device.type == "meta":
        raise NoValues(f"tensor {key!r} is on the meta device: it has no values", tensor=key)
    return t
