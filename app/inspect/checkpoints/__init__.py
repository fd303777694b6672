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

One job per file: ``records`` (errors, formats, tensor records), ``unpickler`` (the opcode scan
and the restricted unpickler), ``safetensors_files`` (headers, shards, mmap views), ``optimizer``
(optimizer state), ``values`` and ``walk`` (classifying what a file holds), ``sources`` (where
tensors come from), ``checkpoint`` (the opened file), ``formats`` (sniffing and opening) and
``store`` (opened files, ``--data-dir``).
"""

from __future__ import annotations

from torchscope.inspect.checkpoints.checkpoint import Checkpoint, tensor_values
from torchscope.inspect.checkpoints.formats import open_checkpoint
from torchscope.inspect.checkpoints.isolation import Isolation, UnsafeToRead
from torchscope.inspect.checkpoints.optimizer import OptimizerInfo, ParamState
from torchscope.inspect.checkpoints.records import (
    CHECKPOINT_SUFFIXES,
    SEP,
    STATE_DICT_NAMES,
    CheckpointFormat,
    Group,
    TensorInfo,
    UnreadableCheckpoint,
    UnsafeCheckpoint,
    dtype_name,
    slug,
)
from torchscope.inspect.checkpoints.safetensors_files import (
    SafetensorsHeader,
    read_safetensors_header,
)
from torchscope.inspect.checkpoints.store import (
    CheckpointStore,
    OpenFailure,
    list_data_dir,
    resolve_in_data_dir,
)
from torchscope.inspect.checkpoints.unpickler import allowed_globals, pickle_globals

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "SEP",
    "STATE_DICT_NAMES",
    "Checkpoint",
    "CheckpointFormat",
    "CheckpointStore",
    "Group",
    "Isolation",
    "OpenFailure",
    "OptimizerInfo",
    "ParamState",
    "SafetensorsHeader",
    "TensorInfo",
    "UnreadableCheckpoint",
    "UnsafeCheckpoint",
    "UnsafeToRead",
    "allowed_globals",
    "dtype_name",
    "list_data_dir",
    "open_checkpoint",
    "pickle_globals",
    "read_safetensors_header",
    "resolve_in_data_dir",
    "slug",
    "tensor_values",
]
