"""The graph of a served model: its inputs from the forward pass, the capture memoised per
structure version and per inputs (``LoadedModel.memo``), never touching the weights.

Inputs come from the forward pass's resolution (issue 10): given with the request, else
``--inputs``, else inferred, else ``NoInputs`` (409 with the reason). The capture runs on
the forward pass's fake shadow of the model (``capture.capture_model``). The model's lock
is held only while the model is read (its inputs, its shadow, its facts): a capture takes
seconds on a big model, and other pages of the same model must not wait for it.
"""

from __future__ import annotations

import json
from typing import Any

from torchscope.inspect.errors import NotFound
from torchscope.inspect.forward.sources import ResolvedInputs, model_inputs
from torchscope.inspect.forward.spec import parse_inputs
from torchscope.inspect.graph.capture import CaptureFailed, CaptureMode, capture_model
from torchscope.inspect.graph.facts import ModuleFacts, module_facts
from torchscope.inspect.graph.present import graph_answer, search
from torchscope.inspect.graph.records import Capture
from torchscope.inspect.overview import TensorTable, model_lookup, model_table
from torchscope.inspect.registry import LoadedModel, Slot
from torchscope.inspect.structure import is_uninitialized

# Weight statistics for the overlays come from the Weights page's table (read once, shared).
# Up to this many elements it is cheap (and prewarmed at startup); past it, the graph does not
# make its first view wait for reading every weight: the Weights page computes it when opened.
STATS_MAX_ELEMENTS = 1 << 30


def canonical(spec: Any) -> str:
    """One string per input spec, whatever the key order: the memo key."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def model_capture(
    loaded: LoadedModel, given: Any = None, mode: CaptureMode = CaptureMode.auto
) -> tuple[Capture, ResolvedInputs]:
    """The model's graph for these inputs: captured once per structure version and inputs.

    The served inputs' capture is kept per capture mode; given inputs keep one slot per
    mode (the page's last ones), so a stream of different inputs cannot fill the memory.
    """
    if given is not None:
        parse_inputs(given)  # an unfit spec is a 422 before anything runs
    with loaded.lock:
        resolved = model_inputs(loaded, given)
        slot = loaded.memo(f"graph.capture:{mode}:{'given' if given is not None else 'served'}", Slot)
    key = canonical(resolved.to_json())
    with slot.lock:
        if slot.outcome is None or slot.key != key:
            try:
                slot.outcome = capture_model(loaded.module, resolved, mode, lock=loaded.lock)
            except CaptureFailed as exc:  # memoised too: the same inputs fail the same way until the model changes
                slot.outcome = exc
            slot.key = key
        found = slot.outcome
    if isinstance(found, CaptureFailed):
        raise found
    assert isinstance(found, Capture)
    return found, resolved


def model_facts(loaded: LoadedModel) -> ModuleFacts:
    with loaded.lock:
        return loaded.memo("graph.facts", lambda: module_facts(loaded.module))


def weight_table(loaded: LoadedModel) -> TensorTable | None:
    """The weights' statistics, when the model has values and reading them is cheap (see STATS_MAX_ELEMENTS)."""
    with loaded.lock:
        if loaded.meta:
            return None
        tensors = {id(t): t for _, t in model_lookup(loaded).values()}.values()
        if sum(0 if is_uninitialized(t) else t.numel() for t in tensors) > STATS_MAX_ELEMENTS:
            return None
        return model_table(loaded)


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
    part: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The one data function behind ``GET /api/models/{id}/graph`` and the graph page
    (``part``: nodes lo..hi of a view too wide to draw at once, see parts.py)."""
    check_path(loaded, path)
    capture, resolved = model_capture(loaded, given, mode)
    data = graph_answer(
        capture, model_facts(loaded), path, call, params=params, table=weight_table(loaded), span=part
    )
    data["model"] = loaded.id
    data["inputs"] = capture.inputs
    data["source"] = str(resolved.source)
    data["inputs_note"] = capture.inputs_note
    return data


def model_search(
    loaded: LoadedModel, query: str, *, mode: CaptureMode = CaptureMode.auto, given: Any = None
) -> dict[str, Any]:
    capture, _ = model_capture(loaded, given, mode)
    return search(capture, query, model_facts(loaded))
