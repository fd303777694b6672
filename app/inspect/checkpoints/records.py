"""What every part of the checkpoint reader shares: errors, formats, groups, tensor records."""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from typing import Any, NamedTuple

import torch

from torchscope.inspect.errors import InspectError

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


MAX_OTHER = 500  # non-tensor entries kept for display


@functools.cache
def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]


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


def slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower()
    return s or "checkpoint"
