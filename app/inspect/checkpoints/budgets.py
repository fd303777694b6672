"""Fixed budgets for untrusted checkpoint files, checked before the work they bound (issue 9).

* ``scan_pickle``: one pass over a pickle's opcodes, never building an object, that proves
  what the C unpickler will do is bounded: object count, memo indices (a huge ``LONG_BINPUT``
  makes the C unpickler allocate and zero gigabytes), integer sizes, and nesting depth. Depth
  must be bounded *before* unpickling: a dict key that is a tuple nested a million deep is
  hashed recursively in C and kills the process (SIGSEGV), which no ``try`` can catch.
  Tuples are immutable, so the depth computed for a tuple from its items is exact; mutable
  containers are not hashable, so a hash stops at them.
* ``read_member``: a zip entry read in bounded chunks, refused before inflating when it claims
  more than the limit (a 1 KB deflated ``data.pkl`` can inflate to gigabytes).
* ``zip_entry_count``: the archive's own entry count, read from its end record before
  ``zipfile`` builds one object per entry.
"""

from __future__ import annotations

import mmap
import pickletools
import struct
import zipfile
from typing import IO

from torchscope.inspect.checkpoints.records import UnreadableCheckpoint

MAX_PICKLE_BYTES = 256 * 1024 * 1024  # data.pkl of a 100k-tensor checkpoint is ~20 MB
MAX_PICKLE_OBJECTS = 2_500_000  # objects the unpickler may build (a tensor takes ~15: 150k tensors)
MAX_PICKLE_DEPTH = 200  # containers inside containers (state_dicts nest < 10 deep)
MAX_PICKLE_INT_BYTES = 64  # LONG1/LONG4 integers: offsets and sizes fit in 8 bytes
MAX_ZIP_ENTRIES = 1_000_000  # torch.save writes one entry per storage
MAX_EXPANSION = 4  # a tensor may view at most this many times its stored elements...
EXPANSION_SLACK = 1 << 16  # ...plus this many (an expanded scalar or bias is fine)


def budget_error(label: str, message: str, rule: str = "budget", **extra: object) -> UnreadableCheckpoint:
    return UnreadableCheckpoint(f"{label}: {message}", rule=rule, **extra)


# --------------------------------------------------------------------------- the opcode table

_FIXED, _LINE, _LEN1, _LEN4, _LEN4U, _LEN8U = range(6)
_ARG: dict[int, tuple[str, int, int]] = {}  # opcode byte -> (name, arg kind, fixed length)
for _op in pickletools.opcodes:
    _n = 0 if _op.arg is None else _op.arg.n
    _kind = {
        pickletools.UP_TO_NEWLINE: _LINE,
        pickletools.TAKEN_FROM_ARGUMENT1: _LEN1,
        pickletools.TAKEN_FROM_ARGUMENT4: _LEN4,
        pickletools.TAKEN_FROM_ARGUMENT4U: _LEN4U,
        pickletools.TAKEN_FROM_ARGUMENT8U: _LEN8U,
    }.get(_n, _FIXED)
    _ARG[_op.code.encode("latin-1")[0]] = (_op.name, _kind, max(_n, 0))
# UNICODE (protocol 0) and the decimal PUT/GET/INT/LONG args end at a newline too.
_LEAF = frozenset(
    ["INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT", "NONE", "NEWTRUE", "NEWFALSE", "GLOBAL", "EXT1", "EXT2", "EXT4", "PERSID", "NEXT_BUFFER"]
)
_EMPTY = frozenset({"EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"})
_FROM_MARK = frozenset({"TUPLE", "LIST", "DICT", "FROZENSET", "INST", "OBJ"})
_INTO_TOP_FROM_MARK = frozenset({"APPENDS", "SETITEMS", "ADDITEMS"})
_TUPLE_N = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}


# Stack effects, as small integers for a fast dispatch on the opcode byte.
(_A_LEAF, _A_EMPTY, _A_MARK, _A_FROM_MARK, _A_TUPLE_N, _A_APPEND, _A_SETITEM, _A_INTO_FROM_MARK, _A_BUILD,
 _A_REDUCE, _A_NEWOBJ_EX, _A_STACK_GLOBAL, _A_BINPERSID, _A_PUT, _A_MEMOIZE, _A_GET, _A_POP, _A_POP_MARK,
 _A_DUP, _A_STOP, _A_NOTHING) = range(21)


def _action(name: str) -> int:
    if name in _LEAF:
        return _A_LEAF
    if name in _EMPTY:
        return _A_EMPTY
    if name in _FROM_MARK:
        return _A_FROM_MARK
    if name in _TUPLE_N:
        return _A_TUPLE_N
    if name in _INTO_TOP_FROM_MARK:
        return _A_INTO_FROM_MARK
    return {
        "MARK": _A_MARK, "APPEND": _A_APPEND, "SETITEM": _A_SETITEM, "BUILD": _A_BUILD, "REDUCE": _A_REDUCE,
        "NEWOBJ": _A_REDUCE, "NEWOBJ_EX": _A_NEWOBJ_EX, "STACK_GLOBAL": _A_STACK_GLOBAL, "BINPERSID": _A_BINPERSID,
        "PUT": _A_PUT, "BINPUT": _A_PUT, "LONG_BINPUT": _A_PUT, "MEMOIZE": _A_MEMOIZE, "GET": _A_GET,
        "BINGET": _A_GET, "LONG_BINGET": _A_GET, "POP": _A_POP, "POP_MARK": _A_POP_MARK, "DUP": _A_DUP,
        "STOP": _A_STOP,
    }.get(name, _A_NOTHING)


# opcode byte -> (name, arg kind, fixed arg length, action)
_TABLE: list[tuple[str, int, int, int] | None] = [None] * 256
for _code, (_name, _kind, _n) in _ARG.items():
    _TABLE[_code] = (_name, _kind, _n, _action(_name))
_WIDTH = {_LEN1: 1, _LEN4: 4, _LEN4U: 4, _LEN8U: 8}


class PickleScan:
    """What :func:`scan_pickle` saw: where the pickle ended, how many objects, how deep."""

    __slots__ = ("depth", "end", "objects")

    def __init__(self, end: int, objects: int, depth: int) -> None:
        self.end, self.objects, self.depth = end, objects, depth


def scan_pickle(
    data: bytes | mmap.mmap,
    label: str,
    *,
    start: int = 0,
    max_objects: int = MAX_PICKLE_OBJECTS,
    max_depth: int = MAX_PICKLE_DEPTH,
) -> PickleScan:
    """Walk one pickle's opcodes (never executing them) and refuse it if a budget would be exceeded."""
    buf = data  # bytes or a read-only mmap: both index to ints, slice to bytes and find()
    size = len(buf)
    pos = start
    stack: list[int] = []  # nesting depth of each object on the unpickler's stack
    marks: list[int] = []
    memo: list[int] = []
    objects = 0
    deepest = 0
    table = _TABLE
    unpack_from = struct.unpack_from

    def corrupt(why: str) -> UnreadableCheckpoint:
        return budget_error(label, f"the pickle is corrupt or truncated ({why} at byte {pos})", rule="format")

    def too_deep() -> UnreadableCheckpoint:
        return budget_error(label, f"the pickle nests more than {max_depth} levels deep (the limit)", rule="depth")

    def pop_mark() -> int:
        if not marks:
            raise corrupt("no MARK")
        at = marks.pop()
        items = stack[at:]
        del stack[at:]
        return max(items, default=0)

    def floor() -> int:
        return marks[-1] if marks else 0

    while True:
        if pos >= size:
            raise corrupt("no STOP")
        entry = table[buf[pos]]
        if entry is None:
            raise corrupt(f"unknown opcode 0x{buf[pos]:02x}")
        pos += 1
        name, kind, n, action = entry
        arg_int = -1
        if kind == _FIXED:
            if n == 1:
                arg_int = buf[pos]
            elif n == 4 and action in (_A_PUT, _A_GET):
                arg_int = unpack_from("<I", buf, pos)[0] if pos + 4 <= size else -1
            pos += n
        elif kind == _LINE:
            end = buf.find(b"\n", pos, pos + 1024)
            if end < 0:
                raise corrupt("unterminated argument")
            text = buf[pos:end]
            pos = end + 1
            if action in (_A_PUT, _A_GET):
                if not text.isdigit() or len(text) > 12:
                    raise corrupt(f"bad memo index {text[:20]!r}")
                arg_int = int(text)
            elif len(text) > 40 and name in ("INT", "LONG"):
                raise budget_error(label, f"the pickle holds an integer of {len(text)} digits (the limit is 40)")
            elif name in ("GLOBAL", "INST"):
                end = buf.find(b"\n", pos, pos + 1024)  # the attribute name is a second line
                if end < 0:
                    raise corrupt("unterminated argument")
                pos = end + 1
        else:
            width = _WIDTH[kind]
            if pos + width > size:
                raise corrupt("truncated length")
            length = int.from_bytes(buf[pos : pos + width], "little", signed=kind == _LEN4)
            pos += width
            if length < 0 or pos + length > size:
                raise corrupt(f"{name} of {length} bytes runs past the end")
            if length > MAX_PICKLE_INT_BYTES and name in ("LONG1", "LONG4"):
                raise budget_error(label, f"the pickle holds a {length}-byte integer (the limit is {MAX_PICKLE_INT_BYTES} bytes)")
            pos += length
        if pos > size:
            raise corrupt("truncated argument")

        # -- the stack effect, as nesting depths (most frequent first)
        if action == _A_LEAF:
            stack.append(0)
            objects += 1
            if objects > max_objects:
                raise budget_error(label, f"the pickle builds more than {max_objects:,} objects (the limit)")
            continue
        if action == _A_PUT:
            if len(stack) <= 0:
                raise corrupt("memoize on an empty stack")
            # The C unpickler sizes its memo by the largest index: indices must come in order.
            if arg_int == len(memo):
                memo.append(stack[-1])
            elif 0 <= arg_int < len(memo):
                memo[arg_int] = stack[-1]
            else:
                raise budget_error(label, f"the pickle's memo index {arg_int} skips ahead (memo bomb)", rule="memo")
            continue
        if action == _A_GET:
            if not 0 <= arg_int < len(memo):
                raise corrupt(f"memo index {arg_int} was never stored")
            stack.append(memo[arg_int])
            if len(stack) > max_objects:
                raise budget_error(label, f"the pickle builds more than {max_objects:,} objects (the limit)")
            continue
        if action == _A_MARK:
            marks.append(len(stack))
            if len(marks) > max_depth:
                raise too_deep()
            continue
        if action == _A_REDUCE:
            if len(stack) - floor() < 2:
                raise corrupt("stack underflow")
            d = max(stack.pop(), stack.pop())
            stack.append(d)
            objects += 1
        elif action == _A_FROM_MARK:
            stack.append(pop_mark() + 1)
            objects += 1
        elif action == _A_TUPLE_N:
            k = _TUPLE_N[name]
            if len(stack) - floor() < k:
                raise corrupt("stack underflow")
            d = max(stack[-k:]) + 1
            del stack[-k:]
            stack.append(d)
            objects += 1
        elif action == _A_EMPTY:
            stack.append(1)
            objects += 1
        elif action in (_A_APPEND, _A_BUILD, _A_SETITEM):
            k = 2 if action == _A_SETITEM else 1
            if len(stack) - floor() < k + 1:
                raise corrupt("stack underflow")
            d = max(stack[-k:]) + 1
            del stack[-k:]
            if d > stack[-1]:
                stack[-1] = d
        elif action == _A_INTO_FROM_MARK:
            d = pop_mark() + 1
            if len(stack) <= floor():
                raise corrupt("no container to add to")
            if d > stack[-1]:
                stack[-1] = d
        elif action == _A_MEMOIZE:
            if not stack:
                raise corrupt("memoize on an empty stack")
            memo.append(stack[-1])
            continue
        elif action in (_A_STACK_GLOBAL, _A_NEWOBJ_EX, _A_BINPERSID):
            k = {_A_STACK_GLOBAL: 2, _A_NEWOBJ_EX: 3, _A_BINPERSID: 1}[action]
            if len(stack) - floor() < k:
                raise corrupt("stack underflow")
            d = 0 if action != _A_NEWOBJ_EX else max(stack[-k:])
            del stack[-k:]
            stack.append(d)
            objects += 1
        elif action == _A_POP:
            if stack and len(stack) > floor():
                stack.pop()
            elif marks:
                marks.pop()
            else:
                raise corrupt("POP on an empty stack")
            continue
        elif action == _A_POP_MARK:
            pop_mark()
            continue
        elif action == _A_DUP:
            if not stack:
                raise corrupt("DUP on an empty stack")
            stack.append(stack[-1])
            continue
        elif action == _A_STOP:
            return PickleScan(pos, objects, deepest)
        else:  # PROTO, FRAME, READONLY_BUFFER: no stack effect
            continue
        if stack and stack[-1] > deepest:
            deepest = stack[-1]
            if deepest > max_depth:
                raise too_deep()
        if objects > max_objects:
            raise budget_error(label, f"the pickle builds more than {max_objects:,} objects (the limit)")


# --------------------------------------------------------------------------- zip archives


def zip_entry_count(f: IO[bytes], label: str) -> None:
    """Refuse an archive whose end record announces more than MAX_ZIP_ENTRIES entries."""
    f.seek(0, 2)
    size = f.tell()
    tail_len = min(size, 22 + 65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return  # zipfile reports the missing end record itself
    entries = struct.unpack_from("<H", tail, at + 10)[0]
    if entries == 0xFFFF:  # zip64: the count is in the zip64 end record, found via its locator
        loc = tail.rfind(b"PK\x06\x07", 0, at)
        if loc >= 0 and loc + 20 <= len(tail):
            offset = struct.unpack_from("<Q", tail, loc + 8)[0]
            if 0 <= offset <= size - 56:
                f.seek(offset)
                rec = f.read(56)
                if rec[:4] == b"PK\x06\x06":
                    entries = struct.unpack_from("<Q", rec, 32)[0]
    if entries > MAX_ZIP_ENTRIES:
        raise budget_error(label, f"the archive lists {entries:,} entries (the limit is {MAX_ZIP_ENTRIES:,})")


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, limit: int = MAX_PICKLE_BYTES) -> bytes:
    """A zip member's bytes, refused before inflating if it is over ``limit``, and read in bounded chunks."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise budget_error(
            label, f"{info.filename} is compressed with method {info.compress_type}; torch.save stores entries uncompressed"
        )
    if info.file_size > limit:
        raise budget_error(label, f"{info.filename} inflates to {info.file_size:,} bytes (the limit is {limit:,})")
    out = bytearray()
    with zf.open(info) as f:
        while chunk := f.read(1 << 20):  # the declared size may lie: count what actually comes out
            out += chunk
            if len(out) > limit:
                raise budget_error(label, f"{info.filename} inflates past {limit:,} bytes (the limit)")
    return bytes(out)
