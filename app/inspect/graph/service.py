"""The graph of a served model: its inputs from the forward pass, the capture memoised per
structure version and per inputs (``LoadedModel.memo``), never touching the weights.

Inputs come from the forward pass's resolution (issue 10): given with the request, else
``--inputs``, else inferred, else ``NoInputs`` (409 with the reason). The capture runs in
the forward pass's fake context (``fake_forward``): every tensor of the model is a fake for
the duration, so neither export nor hooks can read or write a weight, and the model's
``training`` flag, attributes and the RNG state are put back after.
"""

from __future__ import annotations

import json
from typing import Any

from torchscope.inspect.errors import NotFound
from torchscope.inspect.forward.fake import fake_forward
from torchscope.inspect.forward.sources import ResolvedInputs, resolve_inputs
from torchscope.inspect.graph.capture import CaptureFailed, CaptureMode, capture_graph
from torchscope.inspect.graph.facts import ModuleFacts, module_facts
from torchscope.inspect.graph.present import graph_answer, search
from torchscope.inspect.graph.records import Capture
from torchscope.inspect.registry import LoadedModel


def canonical(spec: Any) -> str:
    """One string per input spec, whatever the key order: the memo key."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def graph_inputs(loaded: LoadedModel, given: Any = None) -> ResolvedInputs:
    return resolve_inputs(loaded.module, given=given, cli=getattr(loaded, "inputs", None))


def model_capture(
    loaded: LoadedModel, given: Any = None, mode: CaptureMode = CaptureMode.auto
) -> tuple[Capture, ResolvedInputs]:
    """The model's graph for these inputs: captured once per structure version and inputs."""
    resolved = graph_inputs(loaded, given)
    key = f"graph.capture:{mode}:{canonical(resolved.to_json())}"

    def compute() -> Capture | CaptureFailed:
        # Inferred inputs may come with alternatives (a convolution's input size): try them in order.
        candidates = [resolved] + [resolved.with_spec(spec, note) for spec, note in resolved.alternatives]
        failure: CaptureFailed | None = None
        for candidate in candidates:
            try:
                with fake_forward(loaded.module) as ctx:
                    args, kwargs = ctx.inputs(candidate)
                    capture = capture_graph(loaded.module, args, kwargs, mode=mode)
                capture.inputs = candidate.to_json()
                capture.inputs_note = candidate.note
                return capture
            except CaptureFailed as exc:
                failure = failure or exc
        assert failure is not None
        return failure  # memoised too: the same inputs fail the same way until the model changes

    with loaded.lock:
        found = loaded.memo(key, compute)
    if isinstance(found, CaptureFailed):
        raise found
    return found, resolved


def model_facts(loaded: LoadedModel) -> ModuleFacts:
    with loaded.lock:
        return loaded.memo("graph.facts", lambda: module_facts(loaded.module))


def check_path(loaded: LoadedModel, path: str) -> None:
    facts = model_facts(loaded)
    if path not in facts.classes:
        raise NotFound(f"no module {path!r} in {loaded.name} (paths as in named_modules())", path=path)


def model_graph(
    loaded: LoadedModel,
    path: str = "",
    call: int = 0,
    *,
    params: bool = False,
    mode: CaptureMode = CaptureMode.auto,
    given: Any = None,
) -> dict[str, Any]:
    """The one data function behind ``GET /api/models/{id}/graph`` and the graph page."""
    check_path(loaded, path)
    capture, resolved = model_capture(loaded, given, mode)
    data = graph_answer(capture, model_facts(loaded), path, call, params=params)
    data["model"] = loaded.id
    data["inputs"] = capture.inputs
    data["source"] = str(resolved.source)
    data["inputs_note"] = capture.inputs_note
    return data


def model_search(
    loaded: LoadedModel, query: str, *, mode: CaptureMode = CaptureMode.auto, given: Any = None
) -> dict[str, Any]:
    capture, _ = model_capture(loaded, given, mode)
    return search(capture, query)
