"""Parsing untrusted JSON within fixed budgets: size, nesting depth, element count, integer length.

Python's ``json`` has no limits of its own: a 100,000-deep array is a RecursionError, a
5,000-digit integer a ValueError from the int-from-str limit, and a few MB of ``[[],[],...]``
become a million objects. Every JSON that comes from outside (request bodies, safetensors
headers, ``*.index.json``) is read through :func:`load_json`, whose errors name the budget.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 64
MAX_INT_DIGITS = 40  # JSON integers in headers and requests are counts and offsets: 20 digits suffice
MAX_JSON_ITEMS = 2_000_000


class JsonBudgetError(ValueError):
    """The JSON is well-formed but over a budget (depth, integer length, elements)."""


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonBudgetError(f"an integer of {len(text.lstrip('-'))} digits is over the {MAX_INT_DIGITS}-digit limit")
    return int(text)


def depth_and_items(value: Any, max_depth: int, max_items: int) -> tuple[int, int]:
    """Nesting depth and element count of a parsed JSON value (iterative: no recursion)."""
    deepest, items = 0, 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        items += 1
        if items > max_items:
            raise JsonBudgetError(f"has more than {max_items:,} elements (the limit)")
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        if depth > deepest:
            deepest = depth
            if depth > max_depth:
                raise JsonBudgetError(f"nests deeper than {max_depth} levels (the limit)")
        stack.extend((child, depth + 1) for child in node)
    return deepest, items


def load_json(
    data: bytes | str,
    *,
    what: str,
    max_bytes: int | None = None,
    max_depth: int = MAX_JSON_DEPTH,
    max_items: int = MAX_JSON_ITEMS,
) -> Any:
    """``json.loads`` within budgets. Raises JsonBudgetError (over a budget) or ValueError (not JSON)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise JsonBudgetError(f"{what} is {len(data):,} bytes, over the {max_bytes:,}-byte limit")
    # An upper bound on the elements, counted at C speed before parsing builds any of them.
    if isinstance(data, str):
        approx = data.count(",") + data.count("[") + data.count("{")
    else:
        approx = data.count(b",") + data.count(b"[") + data.count(b"{")
    if approx > max_items:
        raise JsonBudgetError(f"{what} has more than {max_items:,} elements (the limit)")
    try:
        value = json.loads(data, parse_int=_bounded_int)
    except JsonBudgetError as err:
        raise JsonBudgetError(f"{what}: {err}") from None
    except RecursionError:
        raise JsonBudgetError(f"{what} nests deeper than {max_depth} levels (the limit)") from None
    try:
        depth_and_items(value, max_depth, max_items)
    except JsonBudgetError as err:
        raise JsonBudgetError(f"{what} {err}") from None
    return value


def check_json_value(
    data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, max_items: int = MAX_JSON_ITEMS, what: str = "the JSON"
) -> None:
    """Raise JsonBudgetError if ``data`` is over a budget; ValueError if it is not JSON at all."""
    load_json(data, what=what, max_depth=max_depth, max_items=max_items)
