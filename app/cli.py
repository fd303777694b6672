"""The ``torchscope`` command."""

from __future__ import annotations

import argparse
import socket
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from torchscope import __version__, cli_inspect, cli_security, cli_summary
from torchscope.inspect.errors import InspectError

SERVE_EPILOG = textwrap.dedent(
    """\
    SPEC is 'package.module:attr' or 'path/to/file.py:attr', optionally prefixed
    with 'NAME=' to set the name shown in the dashboard. attr may be dotted
    ('mypkg.zoo:Zoo.small') and may be:
      - an nn.Module instance            served as is
      - an nn.Module subclass            constructed with --kwargs
      - a callable returning an nn.Module called with --kwargs
    With no SPEC the built-in example models are served (torchscope.examples).

    examples:
      torchscope serve                                        # built-in examples
      torchscope serve mypkg.models:build_net --kwargs '{"depth": 18}'
      torchscope serve path/to/models.py:MyNet other.module:model_instance
      torchscope serve mypkg:build_llm --meta                 # structure only, no memory
      torchscope serve mypkg:Net --checkpoint runs/ckpt.pth   # open a checkpoint too
      torchscope serve mypkg:Net --inputs '[[1, 3, 224, 224]]'  # example inputs (Forward page)
      torchscope serve mypkg:build_llm --meta --inputs mypkg:make_inputs

    The server binds 127.0.0.1 (this machine only) unless --host says otherwise:
    the dashboard can read and change your model's weights. It answers only its
    own names (--allow-host adds one) and only its own pages; on any other
    --host it asks for a token, printed with the URL (--no-token turns that off).
    """
)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchscope",
        description="A local web dashboard for looking inside PyTorch networks: structure, weights, "
        "init schemes, LR schedules and checkpoints.",
    )
    parser.add_argument("--version", action="version", version=f"torchscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    serve = sub.add_parser(
        "serve",
        help="serve models in the browser dashboard",
        description="Load one or more PyTorch models and serve the torchscope dashboard for them.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("specs", nargs="*", metavar="SPEC", help="models to serve (see below); none = built-in examples")
    serve.add_argument(
        "--kwargs",
        action="append",
        default=[],
        metavar="JSON",
        help="JSON object of keyword arguments for the class or factory, e.g. '{\"depth\": 18}'. "
        "Given once it applies to every SPEC; given once per SPEC it applies in order.",
    )
    serve.add_argument(
        "--inputs",
        action="append",
        default=[],
        metavar="INPUTS",
        help="example inputs for the Forward page (shapes, FLOPs, memory per module call): JSON like "
        "'[[1, 3, 224, 224]]' or '{\"kwargs\": {\"input_ids\": {\"shape\": [1, 128], \"dtype\": \"int64\"}}}', "
        "a .json file, or a callable's SPEC ('pkg.mod:make_inputs'). Once for all SPECs or once per SPEC; "
        "without it, inputs are inferred where the model says what it takes.",
    )
    serve.add_argument(
        "--meta",
        action="store_true",
        help="build models on torch's meta device: structure and shapes with no memory and no weights "
        "(histograms and init are then unavailable)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on (default: 8000; 0 = any free port)")
    serve.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="open a checkpoint (.pt/.pth/.bin/.ckpt, .safetensors, or a sharded *.index.json); repeatable",
    )
    serve.add_argument(
        "--trust-pickle",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="DANGEROUS: allow FILE (and only FILE) to be unpickled without weights_only, which runs "
        "any code the file contains. Use only for files you created yourself.",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="let the browser open checkpoint files from under DIR (nothing outside it)",
    )
    serve.add_argument(
        "--max-upload-mb", type=_positive_int, default=2048, metavar="MB", help="largest checkpoint upload (default: 2048)"
    )
    serve.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    cli_security.add_arguments(serve)

    cli_inspect.add_parser(sub)
    cli_summary.add_parser(sub)
    return parser


def _fail(message: str) -> int:
    print(f"torchscope: error: {message}", file=sys.stderr)
    return 2


def serve(args: argparse.Namespace) -> int:
    from torchscope.inspect.forward.sources import parse_inputs_option
    from torchscope.inspect.loader import parse_kwargs
    from torchscope.inspect.models import load_models
    from torchscope.settings import Settings

    kwargs = [parse_kwargs(k) for k in args.kwargs]
    for text in args.inputs:  # a malformed --inputs fails before any model is loaded
        parse_inputs_option(text)
    if args.data_dir is not None and not args.data_dir.is_dir():
        return _fail(f"--data-dir {args.data_dir}: not a directory")
    for path in [*args.checkpoint, *args.trust_pickle]:
        if not path.is_file():
            return _fail(f"{path}: no such file")
    try:
        access = cli_security.access(args)
    except ValueError as err:
        return _fail(str(err))
    settings = Settings(
        specs=list(args.specs),
        kwargs=kwargs,
        inputs=list(args.inputs),
        meta=args.meta,
        checkpoints=[p.resolve() for p in args.checkpoint],
        trust_pickle=[p.resolve() for p in args.trust_pickle],
        data_dir=args.data_dir.resolve() if args.data_dir else None,
        max_upload_mb=args.max_upload_mb,
        host=args.host,
        port=args.port,
        debug=args.debug,
        allow_hosts=list(args.allow_host),
        token=access.token,
        upload_quota_mb=args.upload_quota_mb,
    )

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    # Bind first: a busy port is a one-line error before minutes of model loading, not after;
    # and port 0 tells us the real port.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    port = sock.getsockname()[1]
    try:
        registry = load_models(
            settings.specs, settings.kwargs, meta=settings.meta, progress=progress, inputs=settings.inputs
        )
    except BaseException:
        sock.close()
        raise
    for warning in access.warnings:
        progress(warning)

    import uvicorn

    from torchscope.main import create_app

    app = create_app(settings, registry=registry)
    url = cli_security.browse_url(args.host, port, access.token)
    progress(f"torchscope {__version__}: serving {len(registry)} model(s) on {url}  (Ctrl+C to stop)")
    config = uvicorn.Config(app, log_level="info" if args.debug else "warning")
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.error(f"unknown command {args.command!r}")
        result: int = handler(args)
        return result
    except InspectError as exc:
        if getattr(args, "debug", False):
            raise
        return _fail(exc.message)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
