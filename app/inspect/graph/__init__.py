"""The dataflow graph of a model (issue 11): captured on fake tensors, folded per module call.

``capture_graph(module, args, kwargs)`` -> ``Capture`` (torch.export, else forward hooks);
``graph_answer(capture, facts, path, call)`` -> the API's JSON; ``search(capture, q)``.
Everything here takes a module and its inputs explicitly and knows nothing of HTTP.
"""

from torchscope.inspect.graph.capture import CaptureFailed, CaptureMode, capture_graph
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
    "graph_answer",
    "graph_view",
    "module_facts",
    "search",
]
