"""``torchscope inspect FILE``: a checkpoint's keys, shapes, dtypes and sizes, no model and no server needed."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torchscope.inspect.errors import InspectError
from torchscope.units import human_bytes

if TYPE_CHECKING:
    from torchscope.inspect.checkpoints import Checkpoint

EPILOG = textwrap.dedent(
    """\
    FILE is a torch.save file (.pt/.pth/.bin/.ckpt), a .safetensors file, or the
    *.index.json of a sharded safetensors set. Nothing is unpickled beyond what
    torch.load(weights_only=True) allows; a file that needs more (a whole pickled
    model, custom classes) is refused with the globals it wants, unless you pass
    --trust-pickle, which RUNS ANY CODE IN THE FILE.

    exit status: 0 ok, 2 refused / unreadable / corrupt file (one line on stderr)
    """
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "inspect",
        help="list a checkpoint's tensors (no model needed)",
        description="Print the keys, shapes, dtypes and sizes of a checkpoint, its optimizer state and other entries.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the checkpoint to inspect")
    parser.add_argument("--json", action="store_true", help="print the same data as GET /api/checkpoints/{id}, as JSON")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="DANGEROUS: unpickle FILE without weights_only (runs any code it contains); only for files you made",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from torchscope.inspect.checkpoints.unpickler import (
        TRUST_HINT,  # torch is imported only when needed
    )

    path: Path = args.file
    try:
        ckpt = _open(path, args.trust_pickle)
    except InspectError as err:
        # The server's hint names its own flag (--trust-pickle FILE); this command's takes no FILE.
        err.message = err.message.replace(TRUST_HINT, f"If you trust this exact file: torchscope inspect {path} --trust-pickle")
        raise
    data = ckpt.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_table(ckpt, data))
    return 0


def _open(path: Path, trusted: bool) -> Checkpoint:
    from torchscope.inspect.checkpoints import Isolation, open_checkpoint

    if trusted:
        return open_checkpoint(path, trusted_paths=[path])
    # The same budgets as the server: listed in a worker process (forked: this command has no
    # threads), so a file that crashes, bombs or hangs the reader is one line and exit 2.
    isolation = Isolation(method="fork", workers=1)
    try:
        return isolation.open(path, cid="", name=None)
    finally:
        isolation.close()


def format_table(ckpt: Checkpoint, data: dict[str, Any]) -> str:
    """The human-readable listing: header, tensor table, dtype totals, optimizer, other entries."""
    lines = [
        f"{ckpt.name}  [{data['format']}]  {len(ckpt.tensors)} tensors, {human_bytes(data['tensor_bytes'])} of tensor data, "
        f"file {human_bytes(data['file_bytes'])}"
    ]
    if ckpt.state_dict_path:
        lines.append(f"state_dict: {ckpt.state_dict_path!r}")
    lines += [f"note: {n}" for n in ckpt.notes]
    rows = [(t.key, "[" + ", ".join(str(s) for s in t.shape) + "]", t.dtype, human_bytes(t.bytes), str(t.group)) for t in ckpt.tensors.values()]
    header = ("key", "shape", "dtype", "size", "group")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    lines.append("")
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2]), r[3].rjust(widths[3]), r[4]]))
    lines.append("")
    for dt, row in data["by_dtype"].items():
        lines.append(f"{dt}: {row['tensors']} tensors, {row['numel']:,} elements, {human_bytes(row['bytes'])}")
    for opt in ckpt.optimizers:
        lines.append("")
        lines.append(f"optimizer {opt.path or '(file)'}: {len(opt.params)} parameters in {len(opt.param_groups)} group(s)")
        for g in opt.param_groups:
            hyper = ", ".join(f"{k}={v}" for k, v in g.items() if k not in ("index", "params"))
            lines.append(f"  group {g['index']} ({len(g['params'])} params): {hyper}")
        states = sorted({k for p in opt.params for k in [*p.tensors, *p.values]})
        if states:
            lines.append(f"  per-parameter state: {', '.join(states)}")
    if ckpt.other:
        lines.append("")
        lines.append("other entries:")
        for k, v in ckpt.other.items():
            lines.append(f"  {k} = {json.dumps(v)[:200]}")
    return "\n".join(lines)

