"""The dataflow graph of a model (issue 11): captured on fake tensors, folded per module call.

``capture_model(module, inputs)`` -> ``Capture`` (torch.export, else forward hooks, on the
forward pass's fake shadow of the model; ``capture_graph(module, args, kwargs)`` on any module);
``graph_answer(capture, facts, path, call)`` -> the API's JSON; ``search(capture, q)``.
Everything here takes a module and its inputs explicitly and knows nothing of HTTP.
"""

from torchscope.inspect.graph.capture import (
    CaptureFailed,
    CaptureMode,
    capture_graph,
    capture_model,
)
from torchscope.inspect.graph.facts import ModuleFacts, module_facts
from torchscope.inspect.graph.present import graph_answer, search
from torchscope.inspect.graph.records import Capture, Method
from torchscope.inspect.graph.view import View, graph_view

__all__ = [
    "Capture",
    "CaptureFailed",
    "CaptureMode",
    "Method",
    "ModuleFacts",
    "View",
    "capture_graph",
    "capture_model",
    "graph_answer",
    "graph_view",
    "module_facts",
    "search",
]
