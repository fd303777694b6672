"""The array evaluator: the scalar evaluator's values for many epochs at once, bit for bit.

``+ - * /``, comparisons and ``where`` are IEEE operations that numpy performs exactly
as Python does; ``**`` and every function go through :mod:`torchscope.inspect.exactmath`
(libm, as Python). Elements where Python might raise (a zero divisor, a math domain
error, an overflow) are marked "suspect" and re-evaluated by the scalar evaluator, which
either raises the precise error or gives Python's value (a branch that ``if``/``and``/``or``
never takes is evaluated here too, and must not fail the expression).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from torchscope.inspect import exactmath
from torchscope.inspect.safe_expr.language import (
    CONSTANTS,
    FUNCTIONS,
    VARIABLE,
    Expr,
    SafeExprError,
    _col,
)
from torchscope.inspect.safe_expr.scalar import evaluate, fmt_epoch

_Mask = np.ndarray | None


@dataclass(frozen=True)
class StepValues:
    """Values at each epoch; from ``error_at`` on, NaN: Python raised ``error`` there."""

    values: np.ndarray
    error_at: int | None = None
    error: SafeExprError | None = None


def evaluate_steps(expr: Expr, epochs: np.ndarray) -> StepValues:
    """The expression at every epoch, and where (if anywhere) it first raises, as torch's lambda would."""
    x = np.asarray(epochs, dtype=np.float64)
    with np.errstate(all="ignore"):
        raw, suspect = _aeval(expr.tree, x)
    out = np.array(np.broadcast_to(raw, x.shape), dtype=np.float64)
    if suspect is None or not suspect.any():
        return StepValues(out)
    for i in np.flatnonzero(np.broadcast_to(suspect, x.shape)).tolist():
        try:
            out[i] = evaluate(expr, float(x[i]))
        except SafeExprError as err:
            out[i:] = math.nan
            return StepValues(out, i, err)
    return StepValues(out)


def evaluate_array(expr: Expr, epochs: np.ndarray) -> np.ndarray:
    """Values at many epochs at once; raises the scalar evaluator's precise error at the first failing epoch."""
    result = evaluate_steps(expr, epochs)
    if result.error is not None:
        raise result.error
    return result.values


def _or(a: _Mask, b: _Mask) -> _Mask:
    if a is None:
        return b
    return a if b is None else a | b


def _aeval(node: ast.expr, x: np.ndarray) -> tuple[Any, _Mask]:
    if isinstance(node, ast.Constant):
        return np.float64(node.value), None  # type: ignore[arg-type]  # _check allowed numbers only
    if isinstance(node, ast.Name):
        return (x if node.id == VARIABLE else np.float64(CONSTANTS[node.id])), None
    if isinstance(node, ast.UnaryOp):
        v, s = _aeval(node.operand, x)
        if isinstance(node.op, ast.Not):
            return (v == 0).astype(np.float64), s
        return (-v if isinstance(node.op, ast.USub) else v), s
    if isinstance(node, ast.BinOp):
        return _binop(node, x)
    if isinstance(node, ast.BoolOp):
        parts = [_aeval(v, x) for v in node.values]
        mask: _Mask = None
        for _, s in parts:
            mask = _or(mask, s)
        out = parts[-1][0]
        for v, _ in reversed(parts[:-1]):
            # and: the first false operand, else the last; or: the first true one, else the last
            out = np.where(v != 0, out, v) if isinstance(node.op, ast.And) else np.where(v != 0, v, out)
        return out, mask
    if isinstance(node, ast.Compare):
        left, mask = _aeval(node.left, x)
        result: Any = np.float64(1.0)
        for op, sub in zip(node.ops, node.comparators, strict=True):
            right, s = _aeval(sub, x)
            mask = _or(mask, s)
            result = result * _compare(op, left, right)
            left = right
        return result, mask
    if isinstance(node, ast.IfExp):
        (t, st), (b, sb), (o, so) = _aeval(node.test, x), _aeval(node.body, x), _aeval(node.orelse, x)
        return np.where(t != 0, b, o), _or(st, _or(sb, so))
    if isinstance(node, ast.Call):
        return _call(node, x)
    raise SafeExprError(f"{type(node).__name__} is not allowed", position=_col(node))  # pragma: no cover


def _compare(op: ast.cmpop, a: Any, b: Any) -> Any:
    if isinstance(op, ast.Lt):
        r = a < b
    elif isinstance(op, ast.LtE):
        r = a <= b
    elif isinstance(op, ast.Gt):
        r = a > b
    elif isinstance(op, ast.GtE):
        r = a >= b
    elif isinstance(op, ast.Eq):
        r = a == b
    else:
        r = a != b
    return np.asarray(r, dtype=np.float64)


def _mask_of(cond: Any, x: np.ndarray) -> _Mask:
    m = np.broadcast_to(np.asarray(cond, dtype=bool), x.shape)
    return np.array(m) if m.any() else None


def _binop(node: ast.BinOp, x: np.ndarray) -> tuple[Any, _Mask]:
    a, sa = _aeval(node.left, x)
    b, sb = _aeval(node.right, x)
    mask = _or(sa, sb)
    op = type(node.op)
    if op is ast.Add:
        return a + b, mask
    if op is ast.Sub:
        return a - b, mask
    if op is ast.Mult:
        return a * b, mask
    if op is ast.Div:
        return np.divide(a, b), _or(mask, _mask_of(b == 0, x))
    if op in (ast.FloorDiv, ast.Mod):
        # numpy's floor_divide/remainder follow Python's float // and % for finite operands
        odd = (b == 0) | ~np.isfinite(a) | ~np.isfinite(b)
        out = np.floor_divide(a, b) if op is ast.FloorDiv else np.remainder(a, b)
        return out, _or(mask, _mask_of(odd, x))
    values, bad = exactmath.elementwise(math.pow, a, b, shape=x.shape)
    return values, _or(mask, bad)


def _call(node: ast.Call, x: np.ndarray) -> tuple[Any, _Mask]:
    assert isinstance(node.func, ast.Name)
    name = node.func.id
    evaluated = [_aeval(a, x) for a in node.args]
    mask: _Mask = None
    for _, s in evaluated:
        mask = _or(mask, s)
    args = [v for v, _ in evaluated]
    if name == "abs" or name == "fabs":
        return np.abs(args[0]), mask
    if name == "float":
        return args[0], mask
    fn = math.pow if name == "pow" else FUNCTIONS[name].scalar
    values, bad = exactmath.elementwise(fn, *args, shape=x.shape)
    return values, _or(mask, bad)


__all__ = ["StepValues", "evaluate_array", "evaluate_steps", "fmt_epoch"]
