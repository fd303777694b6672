"""``run_forward(module, inputs)``: the whole answer of ``/forward``, on fake tensors when torch can.

Order of attempts: a fake forward (``fake.fake_forward``), for each inferred candidate
in turn when the first does not fit (a convolution's spatial size); then, only when fake
tensors could not run it and the model is small (``MAX_REAL_BYTES``), a real forward on a
deep copy with random inputs (``"mode": "real"``, said in the warnings). A forward that
fails is a ``ForwardFailed`` (422) naming the module call where it failed.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import (
    DataDependentOutputException,
    DynamicOutputShapeException,
    UnsupportedOperatorException,
)
from torch.utils.flop_counter import FlopCounterMode

from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.forward.fake import fake_forward, isolated, module_device
from torchscope.inspect.forward.record import Call, Recorder, describe
from torchscope.inspect.forward.sources import ResolvedInputs
from torchscope.inspect.forward.spec import InputSpec, build_values, random_tensor
from torchscope.inspect.forward.totals import ParamStats, module_params, module_paths, totals
from torchscope.inspect.structure import Walk, is_uninitialized, paused_gc

# A real forward on a copy is a fallback for small models only: it copies the weights and computes.
MAX_REAL_BYTES = 256 * 2**20
MAX_REAL_INPUT_ELEMENTS = 2**24
MAX_MESSAGE = 2000
Lock = AbstractContextManager[Any]  # a served model's lock, or a null context
_FAKE_LIMITS = (DataDependentOutputException, DynamicOutputShapeException, UnsupportedOperatorException)


class ForwardFailed(InvalidRequest):
    """The model's forward raised: where (path, class, call), with which inputs, and torch's message."""


@dataclass
class _Outcome:
    calls: list[Call]
    flops: int = 0
    activation_bytes: int = 0
    output: Any = None
    error: BaseException | None = None
    failed_at: Call | None = None


@dataclass
class ForwardResult:
    """Everything ``/forward`` answers; ``to_dict()`` is the JSON."""

    inputs: ResolvedInputs
    mode: str  # "fake" | "real"
    device: str  # whose kernels were counted
    training: bool
    calls: list[Call]
    totals: dict[str, Any]
    output: Any
    warnings: list[str]
    aliases: dict[str, list[str]]
    elapsed_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs.to_json(),
            "source": self.inputs.source.value,
            "note": self.inputs.note,
            "mode": self.mode,
            "device": self.device,
            "training": self.training,
            "calls": [c.to_dict() for c in self.calls],
            "output": self.output,
            "totals": self.totals,
            "warnings": self.warnings,
            "aliases": self.aliases,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


def _measure(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], params: dict[int, int],
             weights: Callable[[], list[torch.Tensor]], mode: Any = None) -> _Outcome:
    """One forward with hooks, FlopCounterMode and saved-tensor accounting; failures are captured.

    ``weights()``: the parameters and buffers, read after the forward (lazy ones exist only then),
    whose storages are not activations even when autograd saves them (``weight.t()`` for a matmul).
    """
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        saved[storage._cdata] = storage.nbytes()
        return t

    counter = FlopCounterMode(display=False)
    recorder = Recorder(module, counter.get_total_flops, params)
    outcome = _Outcome(recorder.calls)
    try:
        with (
            mode if mode is not None else contextlib.nullcontext(),
            counter,
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        ):
            out = module(*args, **kwargs)
            outcome.output = describe(out)
    except Exception as exc:
        outcome.error = exc
        outcome.failed_at = recorder.fail_open_frames()
    finally:
        recorder.detach()
    outcome.flops = counter.get_total_flops()
    for t in weights():
        if not is_uninitialized(t):
            saved.pop(t.untyped_storage()._cdata, None)
    outcome.activation_bytes = sum(saved.values())
    return outcome


def _fake_run(module: nn.Module, inputs: ResolvedInputs, params: dict[int, int], device: Any, lock: Lock) -> _Outcome:
    with fake_forward(module, device=device, lock=lock) as ctx:
        args, kwargs = ctx.inputs(inputs)
        shadow_params = {id(ctx.shadows[key]): n for key, n in params.items() if key in ctx.shadows}
        return _measure(ctx.module, args, kwargs, shadow_params, lambda: list(ctx.fakes.values()), ctx.mode)


def _real_run(module: nn.Module, inputs: ResolvedInputs, meta: bool, lock: Lock) -> _Outcome:
    """A real forward on a deep copy (weights uninitialized for a meta model: shapes are what counts)."""
    with lock:
        twin = copy.deepcopy(module)
    if meta:
        twin.to_empty(device="cpu")
    device = module_device(twin)
    params = module_params(Walk(twin))
    with isolated():
        if inputs.values is not None:
            args, kwargs = inputs.values
        else:
            generator = torch.Generator().manual_seed(0)
            args, kwargs = build_values(inputs.spec, lambda s: random_tensor(s, device, generator))
        return _measure(twin, args, kwargs, params, lambda: [*twin.parameters(), *twin.buffers()])


def _message(exc: BaseException) -> str:
    if isinstance(exc, DataDependentOutputException | DynamicOutputShapeException):
        return (
            f"fake tensors have no values, and this op needs them ({exc}): .item(), .tolist(), "
            "a Python `if` on a tensor, boolean-mask indexing or nonzero()"
        )
    if isinstance(exc, UnsupportedOperatorException):
        return f"fake tensors cannot run {exc}"
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _first_line(outcome: _Outcome | None) -> str:
    return _message(outcome.error).splitlines()[0] if outcome is not None and outcome.error is not None else ""


def _failure(outcome: _Outcome, inputs: ResolvedInputs, mode: str, hint: str = "") -> ForwardFailed:
    assert outcome.error is not None
    call = outcome.failed_at
    message = _message(outcome.error)
    first_line = message.splitlines()[0]
    extra: dict[str, Any]
    if call is None:
        where, extra = "before any module was called", {"path": None, "class": None, "call": None, "module_inputs": None}
    else:
        shown = ", ".join(_short(a) for a in call.inputs["args"])
        shown += "".join(f", {k}={_short(v)}" for k, v in call.inputs["kwargs"].items() if v is not None)
        where = f"at `{call.path or '(model)'}` ({call.cls}, call {call.call}) with inputs ({shown.lstrip(', ')})"
        extra = {"path": call.path, "class": call.cls, "call": call.call, "module_inputs": call.inputs}
    return ForwardFailed(
        f"forward failed {where}: {type(outcome.error).__name__}: {first_line}{hint}",
        error=message,
        error_type=type(outcome.error).__name__,
        mode=mode,
        **extra,
        inputs=inputs.to_json(),
        source=inputs.source.value,
        note=inputs.note,
        calls=[c.to_dict() for c in outcome.calls],
    )


def _short(desc: Any) -> str:
    """``[1, 800]`` for a tensor description, the type for anything else."""
    if isinstance(desc, dict) and "shape" in desc:
        dt = "" if desc["dtype"] == "float32" else " " + desc["dtype"]
        return "[" + ", ".join(str(s) for s in desc["shape"]) + "]" + dt
    if isinstance(desc, dict):
        return str(desc.get("repr") or desc.get("type"))
    return "None" if desc is None else str(desc)


def _small(walk: Walk, inputs: InputSpec) -> bool:
    stats = ParamStats.of(walk)
    return stats.param_bytes + stats.buffer_bytes <= MAX_REAL_BYTES and inputs.total_elements() <= MAX_REAL_INPUT_ELEMENTS


@paused_gc
def run_forward(
    module: nn.Module,
    inputs: ResolvedInputs,
    *,
    device: Any = None,
    allow_real: bool = True,
    lock: Lock | None = None,
) -> ForwardResult:
    """Run ``module`` on ``inputs`` (fake tensors first) and record every module call; see the module docstring.

    ``lock`` (a served model's) is held only while the model itself is read: its structure, its
    shadow, a copy for a real forward. The forward runs on those, so a slow one (seconds for a
    20,000-module model) does not hold up other requests for the same model.
    """
    started = time.perf_counter()
    lock = lock if lock is not None else contextlib.nullcontext()
    with lock:
        walk = Walk(module)
        meta = module_device(module).type == "meta"
        # A lazy module initializes itself on its first forward, which fake tensors cannot do for a
        # real parameter: those models get a real forward on a copy (the served one stays lazy).
        lazy = any(is_uninitialized(t) for _, t in walk.params + walk.buffers)
        params = module_params(walk)
        small = _small(walk, inputs.spec)
        stats = ParamStats.of(walk)
        aliases = module_paths(module)
        training = module.training
        real_device = str(module_device(module))
    warnings: list[str] = []
    candidates = [] if lazy else [(inputs, "")] + [(inputs.with_spec(s, n), n) for s, n in inputs.alternatives]
    first_failure: _Outcome | None = None
    outcome: _Outcome | None = None
    used = inputs
    for candidate, _note in candidates:
        tried = _fake_run(module, candidate, params, device, lock)
        if tried.error is None:
            outcome, used = tried, candidate
            if first_failure is not None:
                at = first_failure.failed_at.path if first_failure.failed_at is not None else None
                warnings.append(
                    f"inferred inputs {inputs.spec.short()} did not fit"
                    + (f" (at `{at or '(model)'}`: {_first_line(first_failure)})" if at is not None else "")
                    + f"; {candidate.spec.short()} did"
                )
            break
        first_failure = first_failure or tried
        if isinstance(tried.error, _FAKE_LIMITS):
            break
    mode = "fake"
    if outcome is None:
        why = "lazy modules initialize on their first forward" if lazy else f"fake tensors could not run this model ({_first_line(first_failure)})"
        if allow_real and small:
            real = _real_run(module, inputs, meta, lock)
            if real.error is not None:
                raise _failure(real, inputs, "real")
            outcome, mode = real, "real"
            warnings.append(
                f"{why}: ran a real forward on a copy with random inputs"
                + (" and uninitialized weights (the model is on meta)" if meta else "")
                + ("; the served model stays uninitialized" if lazy else "")
            )
        elif first_failure is None:
            raise ForwardFailed(f"{why}, and a real forward on a copy is only run for models up to {MAX_REAL_BYTES // 2**20} MiB")
        else:
            hint = ""
            if isinstance(first_failure.error, _FAKE_LIMITS):
                hint = (
                    f" (a real forward on a copy is only run for models up to {MAX_REAL_BYTES // 2**20} MiB"
                    + (" with weights; this one is on the meta device)" if meta else ")")
                )
            raise _failure(first_failure, inputs, "fake", hint)
    kernels = str(device or ("cpu" if meta else real_device))
    if mode == "fake" and meta:
        warnings.append("the model is on the meta device: FLOPs counted as a CPU forward would count them")
    return ForwardResult(
        inputs=used,
        mode=mode,
        device="cpu" if mode == "real" and meta else kernels,
        training=training,
        calls=outcome.calls,
        totals=totals(outcome.calls, outcome.flops, outcome.activation_bytes, stats),
        output=outcome.output,
        warnings=warnings,
        aliases=aliases,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )
