"""Where a served model's example inputs come from: the request, ``--inputs``, or inference.

``resolve_inputs(module, given=..., cli=...)`` is the one place that decides, in that
order: inputs given with the request (``"given"``), the ones of ``--inputs``
(``"cli"``), inferred ones (``"inferred"``), else ``NoInputs`` (409) with the reason.
Issue 11 (the dataflow graph) takes its inputs from here too.

``--inputs`` is JSON (see ``spec``), a ``.json`` file, or the SPEC of a callable
(``pkg.mod:make_inputs``, ``file.py:make_inputs``, imported like model SPECs) that
returns a tensor, a tuple/list of positional arguments, a dict of keyword arguments,
or ``(args, kwargs)``; a callable with one required parameter is given the model.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchscope.inspect.errors import InspectError, ModelSpecError
from torchscope.inspect.forward.infer import Inferred, infer_inputs
from torchscope.inspect.forward.spec import InputSpec, parse_inputs, spec_of_values
from torchscope.inspect.loader import ModelSpec, parse_spec, resolve_object

MAX_OPTION_BYTES = 1 << 20  # --inputs JSON text or file


class Source(StrEnum):
    given = "given"  # with the request (the page's editor, POST /forward)
    cli = "cli"  # --inputs
    python = "python"  # torchscope.show(model, inputs=...)
    inferred = "inferred"  # from the model itself (see infer.py)


class NoInputs(InspectError):
    """The model has no example inputs and none can be inferred: ask for them."""

    status = 409


Values = tuple[tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class ResolvedInputs:
    """The inputs for one forward: spec (JSON-able), source, and real values when the source had them.

    ``values`` are the tensors a ``--inputs`` callable (or a model's own ``dummy_inputs``)
    returned: a fake forward uses only their shapes, a real one their values. ``alternatives``
    are inferred specs to try, in order, when the first does not fit (a convolution's size).
    """

    spec: InputSpec
    source: Source
    note: str = ""
    values: Values | None = field(default=None, repr=False)
    alternatives: tuple[tuple[InputSpec, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The resolved JSON spec, as ``POST /forward`` takes it back."""
        return self.spec.to_json()

    def with_spec(self, spec: InputSpec, note: str) -> ResolvedInputs:
        return ResolvedInputs(spec, self.source, note)


@dataclass(frozen=True)
class InputsOption:
    """A parsed ``--inputs``: a JSON spec, or a callable's SPEC (called once the model is built)."""

    text: str
    spec: InputSpec | None = None
    target: ModelSpec | None = None


def _option_error(text: str, message: str) -> ModelSpecError:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return ModelSpecError(f"--inputs {shown!r}: {message}")


def parse_inputs_option(text: str) -> InputsOption:
    """``--inputs`` text -> InputsOption; JSON errors and unfit specs are one-line ModelSpecErrors."""
    raw = text.strip()
    if raw.endswith(".json") and not raw.startswith(("{", "[")):
        path = Path(raw).expanduser()
        if not path.is_file():
            raise _option_error(text, "file not found")
        if path.stat().st_size > MAX_OPTION_BYTES:
            raise _option_error(text, f"file is larger than {MAX_OPTION_BYTES:,} bytes")
        raw = path.read_text(encoding="utf-8", errors="replace")
    elif not raw.startswith(("{", "[")):
        try:
            return InputsOption(text, target=parse_spec(raw))
        except ModelSpecError as exc:
            raise _option_error(text, "neither JSON nor a callable's SPEC ('pkg.mod:make_inputs'): " + exc.message) from None
    if len(raw) > MAX_OPTION_BYTES:
        raise _option_error(text, f"longer than {MAX_OPTION_BYTES:,} bytes")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _option_error(text, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise _option_error(text, "nested too deeply") from None
    try:
        return InputsOption(text, spec=parse_inputs(data))
    except InspectError as exc:
        raise _option_error(text, exc.message) from None


def _call_maker(option: InputsOption, module: nn.Module) -> Any:
    assert option.target is not None
    maker = resolve_object(option.target)
    if not callable(maker):
        raise _option_error(option.text, f"is a {type(maker).__name__}, not a callable returning inputs")
    try:
        sig = inspect.signature(maker)
        required = [
            p for p in sig.parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        required = []
    name = getattr(maker, "__name__", option.target.attr)
    try:
        with torch.no_grad():
            return maker(module) if len(required) == 1 else maker()
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise _option_error(option.text, f"{name}() raised {type(exc).__name__}" + (f": {first}" if first else "")) from exc


def _split(value: Any, text: str) -> Values:
    """What a callable returned -> (args, kwargs)."""
    if isinstance(value, torch.Tensor):
        return (value,), {}
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], list | tuple)
        and isinstance(value[1], dict)
    ):
        args, kwargs = value
    elif isinstance(value, dict):
        args, kwargs = (), value
    elif isinstance(value, list | tuple):
        args, kwargs = value, {}
    else:
        raise _option_error(
            text, f"returned a {type(value).__name__}; return a tensor, a tuple of args, a dict of kwargs or (args, kwargs)"
        )
    if not all(isinstance(k, str) and k.isidentifier() for k in kwargs):
        raise _option_error(text, "keyword argument names must be identifiers")
    return tuple(args), dict(kwargs)


def cli_inputs(option: InputsOption, module: nn.Module) -> ResolvedInputs:
    """Resolve ``--inputs`` for a built model (calls the callable, once)."""
    if option.spec is not None:
        return ResolvedInputs(option.spec, Source.cli, "--inputs")
    values = _split(_call_maker(option, module), option.text)
    return ResolvedInputs(spec_of_values(*values), Source.cli, f"--inputs {option.text}", values)


def python_inputs(value: Any, module: nn.Module) -> ResolvedInputs | None:
    """``torchscope.show(model, inputs=value)``: real inputs, a callable making them, or ``--inputs``'s forms.

    ``value`` may be a tensor, a tuple/list of positional arguments, a dict of keyword
    arguments, ``(args, kwargs)``, a callable returning one of those (given the model when it
    takes one argument), or what ``--inputs`` takes (JSON text, a JSON-like spec such as
    ``[[1, 3, 224, 224]]``, a ``.json`` file, a callable's SPEC). ``None``: none given.
    """
    if value is None:
        return None
    if isinstance(value, str):
        given = cli_inputs(parse_inputs_option(value), module)
        return dataclasses.replace(given, source=Source.python, note=given.note.replace("--inputs", "inputs=", 1))
    if callable(value) and not isinstance(value, torch.Tensor | nn.Module):
        made = value(module) if _one_required(value) else value()
        values = _split(made, "inputs=")
    elif _holds_tensor(value):
        values = _split(value, "inputs=")
    else:  # a spec given as Python data: the JSON form of --inputs
        return ResolvedInputs(parse_inputs(value), Source.python, "inputs= (a spec)")
    return ResolvedInputs(spec_of_values(*values), Source.python, "inputs=", values)


def _one_required(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.default is inspect.Parameter.empty and p.kind in kinds) == 1


def _holds_tensor(value: Any, depth: int = 0) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if depth > 32:
        return False
    if isinstance(value, dict):
        return any(_holds_tensor(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_tensor(v, depth + 1) for v in value)
    return False


def resolve_inputs(
    module: nn.Module, *, given: Any = None, cli: ResolvedInputs | None = None
) -> ResolvedInputs:
    """The inputs for one forward of ``module``: given JSON, else ``--inputs``, else inferred; else NoInputs."""
    if given is not None:
        return ResolvedInputs(parse_inputs(given), Source.given, "given with the request")
    if cli is not None:
        return cli
    found = infer_inputs(module)
    if isinstance(found, Inferred):
        first, *rest = found.candidates
        return ResolvedInputs(
            first,
            Source.inferred,
            found.note,
            found.values,
            tuple(zip(rest, found.notes, strict=True)),
        )
    raise NoInputs(
        f"no example inputs for {type(module).__name__}: {found.reason}. Give them with "
        "`torchscope serve SPEC --inputs '[[1, 3, 224, 224]]'` or on the Forward page",
        reason=found.reason,
    )


def model_inputs(loaded: Any, given: Any = None) -> ResolvedInputs:
    """The inputs for this served model (a ``LoadedModel``): given, else ``--inputs``, else inferred."""
    return resolve_inputs(loaded.module, given=given, cli=loaded.inputs)


def attach_cli_inputs(registry: Any, texts: list[str]) -> None:
    """Parse ``--inputs`` (once for all models or once per model) and resolve it for each served model."""
    if not texts:
        return
    models = list(registry)
    if len(texts) not in (1, len(models)):
        raise ModelSpecError(
            f"--inputs was given {len(texts)} times for {len(models)} models: give it once (for all) or once per SPEC"
        )
    options = [parse_inputs_option(t) for t in texts]
    for i, loaded in enumerate(models):
        loaded.inputs = cli_inputs(options[0] if len(options) == 1 else options[i], loaded.module)
