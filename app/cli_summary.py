"""``torchscope summary SPEC``: the Forward page's per-call table in the terminal (torchinfo-like)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

EPILOG = textwrap.dedent(
    """\
    One forward runs on fake tensors (shapes, no values): nothing is computed, the
    weights are never touched, and a model built with --meta costs no memory. Each
    row is one module call, in call order (a module called twice has two rows).

    INPUTS (as for `torchscope serve --inputs`):
      '[[1, 3, 224, 224]]'                                     float32 positional args
      '{"kwargs": {"input_ids": {"shape": [1, 128], "dtype": "int64", "high": 50257}}}'
      inputs.json                                              the same JSON, in a file
      mypkg.data:make_inputs                                   a callable returning a tensor,
                                                               a tuple, a dict or (args, kwargs)
    Without --inputs they are inferred where the model says what it takes (Hugging
    Face configs, a first Conv/Embedding/Linear layer), and the table says so.

    examples:
      torchscope summary torchscope.examples:SmallCNN --inputs '[[1, 3, 32, 32]]'
      torchscope summary mypkg:build_llm --meta --inputs mypkg:make_inputs --depth 2
      torchscope summary mypkg:Net --markdown > forward.md    # paste into an issue

    exit status: 0 ok; 2 bad SPEC or inputs, or the forward failed (one line on
    stderr naming the module where it failed, its inputs and torch's message)
    """
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "summary",
        help="print each module call's input/output shapes, FLOPs and memory (one fake forward)",
        description="Build a model and print what flows through it: one row per module call with input and "
        "output shapes, parameters and FLOPs, then FLOPs, MACs, memory and a training-memory estimate.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", metavar="SPEC", help="the model: 'pkg.module:attr' or 'path/to/file.py:attr'")
    parser.add_argument("--inputs", metavar="INPUTS", default=None, help="example inputs (see below)")
    parser.add_argument("--depth", type=_depth, default=None, metavar="N", help="hide calls nested deeper than N (0 = the model only)")
    parser.add_argument("--kwargs", metavar="JSON", default=None, help="JSON object of keyword arguments for the class or factory")
    parser.add_argument("--meta", action="store_true", help="build the model on the meta device (no memory, no weights)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="print a Markdown table (to paste into an issue)")
    out.add_argument("--json", action="store_true", help="print the same JSON as GET /api/models/{id}/forward")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(handler=run)
    return parser


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    # torch is imported here, not when the CLI starts: `torchscope --help` stays fast.
    from torchscope.inspect import forward as F
    from torchscope.inspect.forward.totals import EXPLAIN
    from torchscope.inspect.loader import build, parse_kwargs, parse_spec

    option = F.parse_inputs_option(args.inputs) if args.inputs is not None else None
    spec = parse_spec(args.spec, parse_kwargs(args.kwargs))
    module = build(spec, meta=args.meta)
    cli = F.cli_inputs(option, module) if option is not None else None
    resolved = F.resolve_inputs(module, cli=cli)
    answer = F.run_forward(module, resolved).to_dict()
    if args.json:
        answer["explain"] = EXPLAIN
        print(json.dumps(answer, indent=1))
    else:
        fmt = F.TableFormat.markdown if args.markdown else F.TableFormat.text
        print(F.format_table(answer, fmt, spec.name, args.depth))
    return 0


if __name__ == "__main__":  # pragma: no cover
    from torchscope.cli import main

    sys.exit(main(["summary", *sys.argv[1:]]))
