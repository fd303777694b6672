"""The expression language for LambdaLR / MultiplicativeLR: values, whitelist, errors with positions."""

from __future__ import annotations

import ast
import builtins
import math

import numpy as np
import pytest

from torchscope.inspect import safe_expr
from torchscope.inspect.safe_expr import SafeExprError, evaluate, evaluate_array, parse


@pytest.mark.parametrize(
    ("text", "epoch", "expected"),
    [
        ("0.95 ** epoch", 7, 0.95**7),
        ("min(1, (epoch + 1) / 5)", 2, 0.6),
        ("max(0.1, 1 - epoch / 10, 0.05)", 12, 0.1),
        ("0.5 * (1 + cos(pi * epoch / 50))", 10, 0.5 * (1 + math.cos(math.pi * 10 / 50))),
        ("-epoch + 3", 1, 2.0),
        ("+epoch", 4, 4.0),
        ("exp(-epoch / 10) * sqrt(4)", 5, math.exp(-0.5) * 2),
        ("log(e) + log(8, 2) + log10(100) + log2(4)", 0, 1 + 3 + 2 + 2),
        ("floor(epoch / 3) + ceil(0.2) + abs(-1)", 7, 2 + 1 + 1),
        ("sin(tau / 4) + tan(0) + tanh(0)", 0, 1.0),
        ("2 ** -1", 0, 0.5),
    ],
)
def test_values_match_python_math(text: str, epoch: int, expected: float) -> None:
    expr = parse(text)
    assert evaluate(expr, epoch) == pytest.approx(expected, rel=1e-15, abs=1e-15)
    assert expr(epoch) == evaluate(expr, epoch)  # the callable handed to torch


def test_array_evaluation_agrees_with_scalar() -> None:
    expr = parse("min(1, (epoch + 1) / 5) * 0.5 * (1 + cos(pi * epoch / 50)) + 0.9 ** epoch")
    epochs = np.arange(200)
    arr = evaluate_array(expr, epochs)
    scalar = np.array([evaluate(expr, int(k)) for k in epochs])
    np.testing.assert_allclose(arr, scalar, rtol=1e-15, atol=0)


def test_never_uses_eval_exec_or_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    real_compile = builtins.compile

    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("the expression language must not call eval/exec")

    def ast_only_compile(source: object, filename: object, mode: str, flags: int = 0, *a: object, **k: object) -> object:
        # ast.parse itself calls compile(..., PyCF_ONLY_AST): a tree, never a code object.
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("the expression language must not compile to code")
        return real_compile(source, filename, mode, flags, *a, **k)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only_compile)
    expr = parse("0.5 * (1 + cos(pi * epoch / 10))")
    assert evaluate(expr, 10) == pytest.approx(0.0, abs=1e-16)
    assert evaluate_array(expr, np.arange(3)).shape == (3,)


@pytest.mark.parametrize(
    ("text", "fragment", "position"),
    [
        ("__import__('os').system('ls')", "only calls to named functions", None),
        ("epoch.real", "Attribute is not allowed", 1),
        ("open('x')", "unknown function 'open'", 1),
        ("x + 1", "unknown name 'x'", 1),
        ("epoch +", "syntax error", 8),
        ("1 +* 2", "syntax error", 4),
        ("2 ** 100", "exponent 100 is too large", 6),
        ("[epoch]", "List is not allowed", 1),
        ("'a'", "only numbers", 1),
        ("True", "only numbers", 1),
        ("epoch @ 2", "operator MatMult is not allowed", 1),
        ("epoch << 2", "operator LShift is not allowed", 1),
        ("epoch is 2", "comparison Is is not allowed", 1),
        ("epoch in (1, 2)", "comparison In is not allowed", 1),
        ("~epoch", "operator Invert is not allowed", 1),
        ("math.min(1, 2)", "math.min is not available", 1),
        ("os.system(1)", "only calls to named functions", None),
        ("math.cos.__class__", "Attribute is not allowed", 1),
        ("(x := 2)", "NamedExpr is not allowed", 2),
        ("[e for e in (1,)][0]", "Subscript is not allowed", 1),
        ("cos(1, 2)", "cos() takes 1 argument(s), got 2", 1),
        ("min(1)", "min() takes at least 2", 1),
        ("max(x=1, y=2)", "keyword arguments are not allowed", None),
        ("cos", "did you mean to call it", 1),
        ("lambda: 1", "exactly one argument", 1),
        ("lambda a, b: a", "exactly one argument", 1),
        ("lambda epoch: lambda x: x", "Lambda is not allowed", 15),
        ("", "empty", None),
    ],
)
def test_rejects_with_precise_message(text: str, fragment: str, position: int | None) -> None:
    with pytest.raises(SafeExprError) as info:
        parse(text)
    assert fragment in info.value.message
    if position is not None:
        assert info.value.position == position
        assert f"column {position}" in info.value.message
    assert info.value.status == 422


def test_a_pasted_python_lambda_is_accepted() -> None:
    assert evaluate(parse("lambda epoch: 0.95 ** epoch"), 3) == 0.95**3
    # any argument name; it shadows the constant e as it would in Python
    assert evaluate(parse("lambda e: min(1.0, (e + 1) / 10)"), 4) == 0.5
    assert parse("lambda step: cos(step)").to_python() == "math.cos(epoch)"


def test_position_counts_leading_spaces() -> None:
    with pytest.raises(SafeExprError) as info:
        parse("   epoch * y")
    assert info.value.position == 12


def test_length_and_node_limits() -> None:
    with pytest.raises(SafeExprError, match="characters long"):
        parse("1+" * 300 + "1")
    with pytest.raises(SafeExprError, match="parts"):
        parse("+".join(["1"] * 150))


@pytest.mark.parametrize(
    ("text", "epoch", "fragment"),
    [
        ("1 / (epoch - 2)", 2, "division by zero at epoch 2"),
        ("sqrt(epoch - 3)", 1, "sqrt() fails at epoch 1"),
        ("log(epoch)", 0, "log() fails at epoch 0"),
        ("exp(epoch)", 1000, "overflow"),
        ("(0 - epoch) ** 0.5", 3, "fractional power"),
        ("epoch ** -1", 0, "zero to a negative power"),
    ],
)
def test_runtime_errors_name_the_epoch(text: str, epoch: int, fragment: str) -> None:
    expr = parse(text)
    with pytest.raises(SafeExprError) as info:
        evaluate(expr, epoch)
    assert fragment in info.value.message
    # The array evaluator reports the same first failing epoch.
    with pytest.raises(SafeExprError) as info2:
        evaluate_array(expr, np.arange(epoch, epoch + 3))
    assert f"epoch {epoch}" in info2.value.message


def test_exported_python_is_equivalent() -> None:
    expr = parse("min(1, (epoch + 1) / 5) * 0.5 * (1 + cos(pi * epoch / 50)) - -1")
    code = expr.to_python()
    assert "math.cos" in code and "math.pi" in code
    namespace: dict[str, object] = {"math": math}
    fn = builtins.eval(f"lambda epoch: {code}", namespace)  # our own generated code, in a test
    for k in range(20):
        assert fn(k) == evaluate(expr, k)


def test_constants_and_functions_are_listed() -> None:
    assert {"cos", "sin", "exp", "log", "sqrt", "floor", "ceil", "min", "max"} <= set(safe_expr.FUNCTIONS)
    assert {"pi", "e"} <= set(safe_expr.CONSTANTS)
