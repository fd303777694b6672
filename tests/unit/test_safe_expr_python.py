"""The expression language behaves like the Python lambda it stands for (issue 12), bit for bit.

References are real Python lambdas written by hand next to each expression.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pytest

from torchscope.inspect.safe_expr import (
    SafeExprError,
    evaluate,
    evaluate_array,
    evaluate_steps,
    parse,
)

# (expression, the lambda a user would write)
SAME_AS_PYTHON: list[tuple[str, Callable[[float], float]]] = [
    ("epoch // 10", lambda e: e // 10),  # PyTorch's own tests: lambda e: e // 10
    ("0.5 ** (epoch // 30)", lambda e: 0.5 ** (e // 30)),
    ("epoch % 7 / 7", lambda e: e % 7 / 7),
    ("(epoch + 1) / 5 if epoch < 5 else 0.5 * (1 + math.cos(math.pi * (epoch - 5) / 95))",
     lambda e: (e + 1) / 5 if e < 5 else 0.5 * (1 + math.cos(math.pi * (e - 5) / 95))),
    ("lambda step: min(1.0, step / 100) * max(0.0, (1000 - step) / 900)",
     lambda e: min(1.0, e / 100) * max(0.0, (1000 - e) / 900)),
    ("epoch < 10 and 0.1 or 1.0", lambda e: e < 10 and 0.1 or 1.0),  # noqa: RUF021 - the old-style conditional, as written
    ("not epoch % 3", lambda e: not e % 3),
    ("1 <= epoch < 50", lambda e: 1 <= e < 50),
    ("(epoch == 3) + (epoch != 4) + (epoch >= 5) + (epoch > 6)", lambda e: (e == 3) + (e != 4) + (e >= 5) + (e > 6)),
    ("math.exp(-epoch / 37) * math.sqrt(epoch + 1) / math.log(epoch + 2)",
     lambda e: math.exp(-e / 37) * math.sqrt(e + 1) / math.log(e + 2)),
    ("0.97 ** epoch", lambda e: 0.97**e),
    ("pow(0.99, epoch) + math.pow(1.0001, epoch)", lambda e: pow(0.99, e) + math.pow(1.0001, e)),
    ("round(epoch / 3) + int(epoch / 4) + float(epoch) * 0 + math.floor(epoch / 6) + math.trunc(-epoch / 5)",
     lambda e: round(e / 3) + int(e / 4) + float(e) * 0 + math.floor(e / 6) + math.trunc(-e / 5)),
    ("math.tanh(epoch / 50) + math.atan2(epoch, 7) + math.hypot(epoch, 3) + math.log1p(epoch) + math.expm1(-epoch / 9)",
     lambda e: math.tanh(e / 50) + math.atan2(e, 7) + math.hypot(e, 3) + math.log1p(e) + math.expm1(-e / 9)),
    ("math.fmod(epoch, 7.5) + math.copysign(2, 3 - epoch) + math.degrees(math.radians(epoch))",
     lambda e: math.fmod(e, 7.5) + math.copysign(2, 3 - e) + math.degrees(math.radians(e))),
    ("-epoch // 7 + -epoch % 7", lambda e: -e // 7 + -e % 7),
    ("math.e ** (-epoch / 100) * math.tau / math.pi / 2", lambda e: math.e ** (-e / 100) * math.tau / math.pi / 2),
]


@pytest.mark.parametrize(("text", "fn"), SAME_AS_PYTHON, ids=[t for t, _ in SAME_AS_PYTHON])
def test_scalar_and_array_equal_the_python_lambda_bit_for_bit(text: str, fn: Callable[[float], float]) -> None:
    expr = parse(text)
    epochs = np.arange(0, 2000, dtype=np.float64)
    want = np.array([float(fn(e)) for e in epochs.tolist()])
    assert np.array_equal(np.array([evaluate(expr, e) for e in epochs.tolist()]), want)
    assert np.array_equal(evaluate_array(expr, epochs), want)
    # torch passes an int epoch: same values (the arithmetic only differs beyond 2**53)
    assert [float(fn(int(e))) for e in epochs[:50].tolist()] == want[:50].tolist()


def test_array_transcendentals_are_libm_not_numpy_over_100k_steps() -> None:
    # numpy's own exp/pow differ from libm by an ulp on ~5 % of inputs; the LambdaLR promise is bit-exactness.
    expr = parse("0.5 * (1 + cos(pi * epoch / 100000)) * exp(-epoch / 30000) * 0.99999 ** epoch")
    epochs = np.arange(100_000, dtype=np.float64)
    want = np.array([0.5 * (1 + math.cos(math.pi * e / 100000)) * math.exp(-e / 30000) * 0.99999**e for e in epochs.tolist()])
    assert np.array_equal(evaluate_array(expr, epochs), want)


def test_untaken_branches_do_not_fail_the_expression() -> None:
    cases: list[tuple[str, Callable[[float], float]]] = [
        ("1 / (epoch - 5) if epoch != 5 else 0.0", lambda e: 1 / (e - 5) if e != 5 else 0.0),
        ("epoch != 5 and 1 / (epoch - 5)", lambda e: e != 5 and 1 / (e - 5)),
        ("epoch >= 5 or math.log(5 - epoch)", lambda e: e >= 5 or math.log(5 - e)),
    ]
    for text, fn in cases:
        assert evaluate_array(parse(text), np.arange(10.0)).tolist() == [float(fn(e)) for e in range(10)], text


@pytest.mark.parametrize(
    ("text", "first_bad", "fragment"),
    [
        ("1 / (epoch - 7)", 7, "division by zero at epoch 7"),
        ("epoch // (epoch - 3)", 3, "division by zero at epoch 3"),
        ("epoch % (4 - epoch)", 4, "division by zero at epoch 4"),
        ("2.0 ** (epoch * 100)", 11, "the power overflows at epoch 11"),
        ("math.exp(epoch * 100)", 8, "exp() overflows at epoch 8"),
        ("math.log(5 - epoch)", 5, "log() fails at epoch 5"),
        ("math.sqrt(2 - epoch)", 3, "sqrt() fails at epoch 3"),
        ("(1 - epoch) ** 0.5", 2, "fractional power"),
        ("int(1e300 * 10.0 ** epoch)", 9, "int() overflows at epoch 9"),
    ],
)
def test_where_python_raises_the_steps_say_at_which_epoch(text: str, first_bad: int, fragment: str) -> None:
    out = evaluate_steps(parse(text), np.arange(20.0))
    assert out.error_at == first_bad and out.error is not None
    assert fragment in out.error.message
    assert np.isfinite(out.values[:first_bad]).all() and np.isnan(out.values[first_bad:]).all()
    with pytest.raises(SafeExprError, match=re.escape(fragment)):
        evaluate(parse(text), first_bad)


def test_infinity_without_an_exception_is_a_value_as_in_python() -> None:
    # 1e308 * 10 is inf in Python, not an error: torch would set an infinite lr, and so do we.
    out = evaluate_steps(parse("1e300 * 10.0 ** epoch"), np.arange(12.0))
    assert out.error is None and out.values[8] == 1e300 * 10.0**8 and math.isinf(out.values[9])
