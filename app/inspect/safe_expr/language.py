"""The language: what may appear in an expression, the checked tree, and its Python rendering."""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any

from torchscope.inspect.errors import InvalidRequest

MAX_LENGTH = 400
MAX_NODES = 200
# Constant exponents beyond this are almost always a typo (``2 ** 1000``) and overflow.
MAX_EXPONENT = 64.0

VARIABLE = "epoch"
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


@dataclass(frozen=True)
class Function:
    """One callable name: its Python implementation, how many arguments it takes, where it lives."""

    scalar: Any  # the Python callable whose result (and exceptions) the expression gets
    min_args: int
    max_args: int  # -1: any number
    module: str  # "builtins" or "math": how the exported Python spells it


def _m(fn: Any, lo: int = 1, hi: int = 1) -> Function:
    return Function(fn, lo, hi, "math")


def _pow(a: float, b: float) -> float:
    # builtin pow()/** on floats; a complex answer (negative ** fractional) is an error here
    out = a**b
    if isinstance(out, complex):
        raise ValueError("negative number to a fractional power")
    return float(out)


FUNCTIONS: dict[str, Function] = {
    "min": Function(min, 2, -1, "builtins"),
    "max": Function(max, 2, -1, "builtins"),
    "abs": Function(abs, 1, 1, "builtins"),
    "round": Function(round, 1, 1, "builtins"),
    "int": Function(int, 1, 1, "builtins"),
    "float": Function(float, 1, 1, "builtins"),
    "pow": Function(_pow, 2, 2, "builtins"),
    "cos": _m(math.cos),
    "sin": _m(math.sin),
    "tan": _m(math.tan),
    "acos": _m(math.acos),
    "asin": _m(math.asin),
    "atan": _m(math.atan),
    "atan2": _m(math.atan2, 2, 2),
    "cosh": _m(math.cosh),
    "sinh": _m(math.sinh),
    "tanh": _m(math.tanh),
    "exp": _m(math.exp),
    "expm1": _m(math.expm1),
    "log": _m(math.log, 1, 2),
    "log10": _m(math.log10),
    "log2": _m(math.log2),
    "log1p": _m(math.log1p),
    "sqrt": _m(math.sqrt),
    "floor": _m(math.floor),
    "ceil": _m(math.ceil),
    "trunc": _m(math.trunc),
    "fabs": _m(math.fabs),
    "fmod": _m(math.fmod, 2, 2),
    "copysign": _m(math.copysign, 2, 2),
    "hypot": _m(math.hypot, 1, -1),
    "radians": _m(math.radians),
    "degrees": _m(math.degrees),
}

BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
COMPARISONS: dict[type[ast.cmpop], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
OPERATORS = [*BINOPS.values(), *COMPARISONS.values(), "and", "or", "not", "x if c else y"]
_ALLOWED_OPS = "+ - * / // % **, comparisons, and/or/not, x if c else y"


class SafeExprError(InvalidRequest):
    """An expression that does not parse, uses something not allowed, or fails to evaluate."""

    def __init__(self, message: str, *, position: int | None = None, epoch: float | None = None,
                 kind: str = "ValueError", **extra: Any) -> None:
        text = message if position is None else f"{message} (at column {position})"
        super().__init__(text, rule="expression", position=position, **extra)
        self.reason = message
        self.position = position
        self.epoch = epoch  # where evaluation failed, for a run-time error
        self.kind = kind  # the Python exception a real lambda would raise there


@dataclass(frozen=True)
class Expr:
    """A checked expression: its text and its whitelisted AST."""

    text: str
    tree: ast.expr

    def __call__(self, epoch: float) -> float:
        from torchscope.inspect.safe_expr.scalar import evaluate  # below this module

        return evaluate(self, epoch)

    def to_python(self) -> str:
        """Equivalent Python source using ``math.``, for exported snippets."""
        return _to_python(self.tree)

    @property
    def uses_math(self) -> bool:
        """Whether the exported Python needs ``import math``."""
        return "math." in self.to_python()


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
    body = _math_names(body)
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


class _MathNames(ast.NodeTransformer):
    """``math.cos`` -> ``cos``, ``math.pi`` -> ``pi``: pasted lambdas spell them with the module."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.value, ast.Name) and node.value.id == "math":
            known = node.attr in CONSTANTS or (node.attr in FUNCTIONS and FUNCTIONS[node.attr].module == "math")
            if node.attr == "pow":
                known = True
            if not known:
                raise SafeExprError(f"math.{node.attr} is not available; math functions allowed: "
                                    f"{', '.join(k for k, f in FUNCTIONS.items() if f.module == 'math')}",
                                    position=_col(node))
            return ast.copy_location(ast.Name(id=node.attr, ctx=ast.Load()), node)
        return self.generic_visit(node)


def _math_names(node: ast.expr) -> ast.expr:
    out = _MathNames().visit(node)
    assert isinstance(out, ast.expr)
    return out


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
        if not isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
            raise SafeExprError(f"operator {type(node.op).__name__} is not allowed; use {_ALLOWED_OPS}", position=_col(node))
        _check(node.operand)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in BINOPS:
            raise SafeExprError(f"operator {type(node.op).__name__} is not allowed; use {_ALLOWED_OPS}", position=_col(node))
        if isinstance(node.op, ast.Pow):
            exp = _constant_value(node.right)
            if exp is not None and abs(exp) > MAX_EXPONENT:
                raise SafeExprError(f"exponent {exp:g} is too large; the limit is {MAX_EXPONENT:g}", position=_col(node.right))
        _check(node.left)
        _check(node.right)
        return
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v)
        return
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in COMPARISONS:
                raise SafeExprError(f"comparison {type(op).__name__} is not allowed; use < <= > >= == !=", position=_col(node))
        _check(node.left)
        for c in node.comparators:
            _check(c)
        return
    if isinstance(node, ast.IfExp):
        _check(node.test)
        _check(node.body)
        _check(node.orelse)
        return
    if isinstance(node, ast.Call):
        _check_call(node)
        return
    raise SafeExprError(f"{type(node).__name__} is not allowed in an expression", position=_col(node))


def _check_call(node: ast.Call) -> None:
    allowed = ", ".join(FUNCTIONS)
    if not isinstance(node.func, ast.Name):
        raise SafeExprError(f"only calls to named functions are allowed ({allowed})", position=_col(node))
    if node.func.id not in FUNCTIONS:
        raise SafeExprError(f"unknown function {node.func.id!r}; functions allowed: {allowed}", position=_col(node))
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


def _constant_value(node: ast.expr) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _constant_value(node.operand)
        if inner is None:
            return None
        return -inner if isinstance(node.op, ast.USub) else inner
    return None


def _to_python(node: ast.expr) -> str:
    # Fully parenthesised: correctness over beauty in exported code.
    if isinstance(node, ast.Constant):
        return repr(node.value)
    if isinstance(node, ast.Name):
        return VARIABLE if node.id == VARIABLE else f"math.{node.id}"
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return f"(not {_to_python(node.operand)})"
        sign = "-" if isinstance(node.op, ast.USub) else "+"
        return f"({sign}{_to_python(node.operand)})"
    if isinstance(node, ast.BinOp):
        return f"({_to_python(node.left)} {BINOPS[type(node.op)]} {_to_python(node.right)})"
    if isinstance(node, ast.BoolOp):
        word = " and " if isinstance(node.op, ast.And) else " or "
        return "(" + word.join(_to_python(v) for v in node.values) + ")"
    if isinstance(node, ast.Compare):
        parts = [_to_python(node.left)]
        for op, c in zip(node.ops, node.comparators, strict=True):
            parts += [COMPARISONS[type(op)], _to_python(c)]
        return "(" + " ".join(parts) + ")"
    if isinstance(node, ast.IfExp):
        return f"({_to_python(node.body)} if {_to_python(node.test)} else {_to_python(node.orelse)})"
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        fn = FUNCTIONS[node.func.id]
        name = node.func.id if fn.module == "builtins" else f"math.{node.func.id}"
        return f"{name}({', '.join(_to_python(a) for a in node.args)})"
    raise SafeExprError(f"{type(node).__name__} is not allowed")  # pragma: no cover
