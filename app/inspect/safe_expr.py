"""A tiny, safe expression language over ``epoch`` for LambdaLR / MultiplicativeLR.

The user types ``0.95 ** epoch`` or ``min(1, (epoch + 1) / 5) * 0.5 * (1 + cos(pi * epoch / 50))``.
The text is parsed with :mod:`ast` and every node is checked against a whitelist; a
walker of our own evaluates the tree. Nothing is ever passed to ``eval``/``exec`` or
compiled to a code object, so the text cannot reach attributes, builtins or imports.

Two evaluators share the tree: :func:`evaluate` (one Python float, what torch's
scheduler calls per step) and :func:`evaluate_array` (numpy, for fast previews).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from torchscope.inspect.errors import InvalidRequest

MAX_LENGTH = 400
MAX_NODES = 200
# Constant exponents beyond this are almost always a typo (``2 ** 1000``) and overflow.
MAX_EXPONENT = 64.0

VARIABLE = "epoch"
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


@dataclass(frozen=True)
class _Func:
    scalar: Callable[..., float]
    array: Callable[..., Any]
    min_args: int
    max_args: int  # -1: any number


def _log(x: float, base: float | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _alog(x: Any, base: Any = None) -> Any:
    return np.log(x) if base is None else np.log(x) / np.log(base)


FUNCTIONS: dict[str, _Func] = {
    "min": _Func(lambda *a: float(min(a)), lambda *a: _reduce(np.minimum, a), 2, -1),
    "max": _Func(lambda *a: float(max(a)), lambda *a: _reduce(np.maximum, a), 2, -1),
    "abs": _Func(abs, np.abs, 1, 1),
    "cos": _Func(math.cos, np.cos, 1, 1),
    "sin": _Func(math.sin, np.sin, 1, 1),
    "tan": _Func(math.tan, np.tan, 1, 1),
    "tanh": _Func(math.tanh, np.tanh, 1, 1),
    "exp": _Func(math.exp, np.exp, 1, 1),
    "log": _Func(_log, _alog, 1, 2),
    "log10": _Func(math.log10, np.log10, 1, 1),
    "log2": _Func(math.log2, np.log2, 1, 1),
    "sqrt": _Func(math.sqrt, np.sqrt, 1, 1),
    "floor": _Func(lambda x: float(math.floor(x)), np.floor, 1, 1),
    "ceil": _Func(lambda x: float(math.ceil(x)), np.ceil, 1, 1),
}


def _reduce(fn: Any, args: tuple[Any, ...]) -> Any:
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out


_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
}


class SafeExprError(InvalidRequest):
    """An expression that does not parse, uses something not allowed, or fails to evaluate."""

    def __init__(self, message: str, *, position: int | None = None, **extra: Any) -> None:
        text = message if position is None else f"{message} (at column {position})"
        super().__init__(text, rule="expression", position=position, **extra)
        self.reason = message
        self.position = position


@dataclass(frozen=True)
class Expr:
    """A checked expression: its text and its whitelisted AST."""

    text: str
    tree: ast.expr

    def __call__(self, epoch: float) -> float:
        return evaluate(self, epoch)

    def to_python(self) -> str:
        """Equivalent Python source using ``math.``, for exported snippets."""
        return _to_python(self.tree)


def parse(text: str) -> Expr:
    """Parse and whitelist-check ``text``; raise :class:`SafeExprError` with a column."""
    if not isinstance(text, str):
        raise SafeExprError(f"expected an expression string, got {type(text).__name__}")
    if not text.strip():
        raise SafeExprError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise SafeExprError(f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as err:
        # Python reports 0 or len+1 for "unexpected end": point at the end instead.
        offset = err.offset if err.offset and 0 < err.offset <= len(stripped) else len(stripped) + 1
        raise SafeExprError(f"syntax error: {err.msg}", position=offset + lead) from None
    count = sum(1 for _ in ast.walk(tree))
    _shift(tree, lead)
    body = _unwrap_lambda(tree.body)
    if count > MAX_NODES:
        raise SafeExprError(f"the expression has {count} parts; the limit is {MAX_NODES}")
    _check(body)
    return Expr(text=text, tree=body)


def _unwrap_lambda(node: ast.expr) -> ast.expr:
    """Accept what people paste from their code: ``lambda epoch: 0.95 ** epoch`` (any one argument name)."""
    if not isinstance(node, ast.Lambda):
        return node
    a = node.args
    if a.posonlyargs or a.kwonlyargs or a.vararg or a.kwarg or a.defaults or len(a.args) != 1:
        raise SafeExprError("a lambda must take exactly one argument, the epoch", position=_col(node))
    name = a.args[0].arg
    for sub in ast.walk(node.body):
        if isinstance(sub, ast.Name) and sub.id == name:
            sub.id = VARIABLE  # the argument shadows constants such as e, as in Python
    return node.body


def _shift(tree: ast.AST, lead: int) -> None:
    if lead:
        for node in ast.walk(tree):
            if hasattr(node, "col_offset"):
                node.col_offset += lead


def _col(node: ast.AST) -> int:
    return int(getattr(node, "col_offset", 0)) + 1


def _check(node: ast.expr) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise SafeExprError(f"only numbers are allowed, not {node.value!r}", position=_col(node))
        return
    if isinstance(node, ast.Name):
        if node.id != VARIABLE and node.id not in CONSTANTS:
            allowed = ", ".join([VARIABLE, *CONSTANTS])
            hint = " (did you mean to call it?)" if node.id in FUNCTIONS else ""
            raise SafeExprError(f"unknown name {node.id!r}{hint}; names allowed: {allowed}", position=_col(node))
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise SafeExprError(f"operator {type(node.op).__name__} is not allowed; use + - * / **", position=_col(node))
        _check(node.operand)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise SafeExprError(
                f"operator {type(node.op).__name__} is not allowed; use + - * / **", position=_col(node)
            )
        if isinstance(node.op, ast.Pow):
            exp = _constant_value(node.right)
            if exp is not None and abs(exp) > MAX_EXPONENT:
                raise SafeExprError(
                    f"exponent {exp:g} is too large; the limit is {MAX_EXPONENT:g}", position=_col(node.right)
                )
        _check(node.left)
        _check(node.right)
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            allowed = ", ".join(FUNCTIONS)
            if not isinstance(node.func, ast.Name):
                raise SafeExprError(f"only calls to named functions are allowed ({allowed})", position=_col(node))
            raise SafeExprError(
                f"unknown function {node.func.id!r}; functions allowed: {allowed}", position=_col(node)
            )
        if node.keywords:
            raise SafeExprError("keyword arguments are not allowed", position=_col(node.keywords[0]))
        fn = FUNCTIONS[node.func.id]
        n = len(node.args)
        if n < fn.min_args or (fn.max_args >= 0 and n > fn.max_args):
            want = f"{fn.min_args}" if fn.min_args == fn.max_args else f"at least {fn.min_args}"
            if fn.max_args > fn.min_args:
                want = f"{fn.min_args} to {fn.max_args}"
            raise SafeExprError(f"{node.func.id}() takes {want} argument(s), got {n}", position=_col(node))
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise SafeExprError("*arguments are not allowed", position=_col(arg))
            _check(arg)
        return
    raise SafeExprError(f"{type(node).__name__} is not allowed in an expression", position=_col(node))


def _constant_value(node: ast.expr) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _constant_value(node.operand)
        if inner is None:
            return None
        return -inner if isinstance(node.op, ast.USub) else inner
    return None


def evaluate(expr: Expr, epoch: float) -> float:
    """The expression's value at one epoch, as a Python float (what torch sees)."""
    try:
        value = _eval(expr.tree, float(epoch))
    except SafeExprError:
        raise
    except ZeroDivisionError:
        raise SafeExprError(f"division by zero at epoch {epoch}") from None
    except OverflowError:
        raise SafeExprError(f"the value overflows at epoch {epoch}") from None
    except (ValueError, TypeError) as err:
        raise SafeExprError(f"cannot evaluate at epoch {epoch}: {err}") from None
    if not math.isfinite(value):
        raise SafeExprError(f"the value is not finite ({value}) at epoch {epoch}")
    return value


def _eval(node: ast.expr, epoch: float) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # _check allowed numbers only
    if isinstance(node, ast.Name):
        return epoch if node.id == VARIABLE else CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, epoch)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a = _eval(node.left, epoch)
        b = _eval(node.right, epoch)
        op = type(node.op)
        if op is ast.Add:
            return a + b
        if op is ast.Sub:
            return a - b
        if op is ast.Mult:
            return a * b
        if op is ast.Div:
            if b == 0:
                raise SafeExprError(f"division by zero at epoch {_fmt(epoch)}", position=_col(node))
            return a / b
        if a < 0 and not float(b).is_integer():
            raise SafeExprError(
                f"negative number to a fractional power at epoch {_fmt(epoch)}", position=_col(node)
            )
        if a == 0 and b < 0:
            raise SafeExprError(f"zero to a negative power at epoch {_fmt(epoch)}", position=_col(node))
        try:
            return float(a**b)
        except OverflowError:
            raise SafeExprError(f"the power overflows at epoch {_fmt(epoch)}", position=_col(node)) from None
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args = [_eval(a, epoch) for a in node.args]
        try:
            return float(FUNCTIONS[node.func.id].scalar(*args))
        except OverflowError:
            raise SafeExprError(
                f"{node.func.id}() overflows at epoch {_fmt(epoch)}", position=_col(node)
            ) from None
        except ValueError as err:
            raise SafeExprError(
                f"{node.func.id}() fails at epoch {_fmt(epoch)}: {err}", position=_col(node)
            ) from None
    raise SafeExprError(f"{type(node).__name__} is not allowed", position=_col(node))  # pragma: no cover


def _fmt(epoch: float) -> str:
    return str(int(epoch)) if float(epoch).is_integer() else repr(epoch)


def evaluate_array(expr: Expr, epochs: np.ndarray) -> np.ndarray:
    """Values at many epochs at once; any non-finite value is re-evaluated one by one for a precise error."""
    x = np.asarray(epochs, dtype=np.float64)
    with np.errstate(all="ignore"):
        out = np.broadcast_to(np.asarray(_aeval(expr.tree, x), dtype=np.float64), x.shape)
    bad = ~np.isfinite(out)
    if bad.any():
        first = float(x[np.argmax(bad)])
        evaluate(expr, first)  # raises the precise scalar error
        raise SafeExprError(f"the value is not finite at epoch {_fmt(first)}")
    return np.array(out, dtype=np.float64)


def _aeval(node: ast.expr, x: np.ndarray) -> Any:
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # _check allowed numbers only
    if isinstance(node, ast.Name):
        return x if node.id == VARIABLE else CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp):
        v = _aeval(node.operand, x)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a = _aeval(node.left, x)
        b = _aeval(node.right, x)
        op = type(node.op)
        if op is ast.Add:
            return a + b
        if op is ast.Sub:
            return a - b
        if op is ast.Mult:
            return a * b
        if op is ast.Div:
            return np.divide(a, b)
        return np.power(a, b)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return FUNCTIONS[node.func.id].array(*[_aeval(a, x) for a in node.args])
    raise SafeExprError(f"{type(node).__name__} is not allowed", position=_col(node))  # pragma: no cover


_PREC = {ast.Add: 1, ast.Sub: 1, ast.Mult: 2, ast.Div: 2, ast.Pow: 4}


def _to_python(node: ast.expr) -> str:
    # Fully parenthesised: correctness over beauty in exported code.
    if isinstance(node, ast.Constant):
        return repr(node.value)
    if isinstance(node, ast.Name):
        return VARIABLE if node.id == VARIABLE else f"math.{node.id}"
    if isinstance(node, ast.UnaryOp):
        sign = "-" if isinstance(node.op, ast.USub) else "+"
        return f"({sign}{_to_python(node.operand)})"
    if isinstance(node, ast.BinOp):
        return f"({_to_python(node.left)} {_BINOPS[type(node.op)]} {_to_python(node.right)})"
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        name = node.func.id if node.func.id in ("min", "max", "abs") else f"math.{node.func.id}"
        return f"{name}({', '.join(_to_python(a) for a in node.args)})"
    raise SafeExprError(f"{type(node).__name__} is not allowed")  # pragma: no cover
