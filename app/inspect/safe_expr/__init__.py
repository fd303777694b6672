"""A tiny, safe expression language over ``epoch`` for LambdaLR / MultiplicativeLR.

The user types ``0.95 ** epoch``, ``epoch // 10``, ``min(1, (epoch + 1) / 5) if epoch < 5 else
0.5 * (1 + math.cos(math.pi * epoch / 50))`` or pastes ``lambda e: ...``. The text is parsed
with :mod:`ast` and every node is checked against a whitelist (numbers, ``epoch``, ``pi``/``e``/
``tau``, ``+ - * / // % **``, comparisons, ``and``/``or``/``not``, ``x if c else y``, and the
functions of :data:`FUNCTIONS`, bare or as ``math.name``); a walker of our own evaluates the
tree. Nothing is ever passed to ``eval``/``exec`` or compiled to a code object, so the text
cannot reach attributes, builtins or imports.

Two evaluators share the tree and agree bit for bit: :func:`evaluate` (one Python float: what
torch's scheduler calls each step, with Python's own semantics and errors) and
:func:`evaluate_steps` / :func:`evaluate_array` (numpy, for fast previews of a million steps).
One package, one job per file: ``language`` (whitelist, parsing, Python rendering), ``scalar``,
``vector``.
"""

from __future__ import annotations

from torchscope.inspect.safe_expr.language import (
    CONSTANTS,
    FUNCTIONS,
    MAX_EXPONENT,
    MAX_LENGTH,
    MAX_NODES,
    OPERATORS,
    VARIABLE,
    Expr,
    SafeExprError,
    parse,
)
from torchscope.inspect.safe_expr.scalar import evaluate
from torchscope.inspect.safe_expr.vector import StepValues, evaluate_array, evaluate_steps

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_NODES",
    "OPERATORS",
    "VARIABLE",
    "Expr",
    "SafeExprError",
    "StepValues",
    "evaluate",
    "evaluate_array",
    "evaluate_steps",
    "parse",
]
