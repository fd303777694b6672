"""The scalar evaluator: one Python float per call, what torch's scheduler gets from the lambda.

Every value is a Python float and every operation is Python's own (libm through ``math``),
so the result is what ``lambda epoch: ...`` gives for a float ``epoch``; ``True``/``False``
become 1.0/0.0, and ``and``/``or`` return operand values as Python does. Where Python
raises (division by zero, math domain, overflow) this raises a SafeExprError naming
the epoch and the column; a non-finite value that Python computes without raising
(``1e308 * 10``) is returned as it is, as torch would use it.
"""

from __future__ import annotations

import ast
import math

from torchscope.inspect.safe_expr.language import (
    CONSTANTS,
    FUNCTIONS,
    VARIABLE,
    Expr,
    SafeExprError,
    _col,
)


def fmt_epoch(epoch: float) -> str:
    return str(int(epoch)) if float(epoch).is_integer() else repr(epoch)


def evaluate(expr: Expr, epoch: float) -> float:
    """The expression's value at one epoch, as a Python float (what torch sees)."""
    return _eval(expr.tree, float(epoch))


def _fail(message: str, node: ast.AST, epoch: float, why: str = "", kind: str = "ValueError") -> SafeExprError:
    text = f"{message} at epoch {fmt_epoch(epoch)}" + (f": {why}" if why else "")
    return SafeExprError(text, position=_col(node), epoch=epoch, kind=kind)


def _truth(v: float) -> bool:
    return bool(v)  # 0.0 and -0.0 are false; NaN is true, as in Python


def _eval(node: ast.expr, epoch: float) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # _check allowed numbers only
    if isinstance(node, ast.Name):
        return epoch if node.id == VARIABLE else CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, epoch)
        if isinstance(node.op, ast.Not):
            return 0.0 if _truth(v) else 1.0
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        return _binop(node, _eval(node.left, epoch), _eval(node.right, epoch), epoch)
    if isinstance(node, ast.BoolOp):
        # Python returns the deciding operand: `a and b` is a if a is false, else b.
        want = not isinstance(node.op, ast.And)
        v = 0.0
        for sub in node.values:
            v = _eval(sub, epoch)
            if _truth(v) == want:
                return v
        return v
    if isinstance(node, ast.Compare):
        left = _eval(node.left, epoch)
        for op, sub in zip(node.ops, node.comparators, strict=True):
            right = _eval(sub, epoch)
            if not _compare(op, left, right):
                return 0.0
            left = right
        return 1.0
    if isinstance(node, ast.IfExp):
        return _eval(node.body, epoch) if _truth(_eval(node.test, epoch)) else _eval(node.orelse, epoch)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args = [_eval(a, epoch) for a in node.args]
        name = node.func.id
        try:
            return float(FUNCTIONS[name].scalar(*args))
        except OverflowError:
            raise _fail(f"{name}() overflows", node, epoch, kind="OverflowError") from None
        except (ValueError, ZeroDivisionError) as err:
            raise _fail(f"{name}() fails", node, epoch, str(err), type(err).__name__) from None
    raise SafeExprError(f"{type(node).__name__} is not allowed", position=_col(node))  # pragma: no cover


def _compare(op: ast.cmpop, a: float, b: float) -> bool:
    if isinstance(op, ast.Lt):
        return a < b
    if isinstance(op, ast.LtE):
        return a <= b
    if isinstance(op, ast.Gt):
        return a > b
    if isinstance(op, ast.GtE):
        return a >= b
    if isinstance(op, ast.Eq):
        return a == b
    return a != b


def _binop(node: ast.BinOp, a: float, b: float, epoch: float) -> float:
    op = type(node.op)
    if op is ast.Add:
        return a + b
    if op is ast.Sub:
        return a - b
    if op is ast.Mult:
        return a * b
    if op in (ast.Div, ast.FloorDiv, ast.Mod):
        if b == 0:
            raise _fail("division by zero", node, epoch, kind="ZeroDivisionError")
        if op is ast.Div:
            return a / b
        return a // b if op is ast.FloorDiv else a % b
    if a < 0 and math.isfinite(a) and math.isfinite(b) and not float(b).is_integer():
        raise _fail("negative number to a fractional power (Python gives a complex number)", node, epoch)
    if a == 0 and b < 0 and math.isfinite(b):
        raise _fail("zero to a negative power", node, epoch, kind="ZeroDivisionError")
    try:
        return float(a**b)
    except OverflowError:
        raise _fail("the power overflows", node, epoch, kind="OverflowError") from None
