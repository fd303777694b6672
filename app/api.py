"""The Python API: ``torchscope.show(model)`` and ``torchscope.serve(model)`` on live nn.Module objects.

Both serve the objects themselves, not copies: what the user trains, re-initialises or edits
in the same process is what the dashboard shows (change detection: app/inspect/live.py).
One server per process, in a background thread, bound to 127.0.0.1: a second ``show`` adds
(or, under the same name, replaces) models on it; ``stop()`` ends it.
"""

from __future__ import annotations

import atexit
import contextvars
import html
import os
import sys
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from torchscope.inspect.live import ModelWatch
from torchscope.inspect.loader import doc_line, is_meta
from torchscope.inspect.registry import ModelRegistry
from torchscope.server import BackgroundServer, ServerError
from torchscope.settings import Settings

Models = nn.Module | Sequence[nn.Module] | Mapping[str, nn.Module]
PathLike = str | os.PathLike[str]

# The process's one server of live models, shared by every show() call: a notebook re-runs
# cells, and each run must land on the server the open pages and iframes already talk to.
# (create_app itself keeps no globals; this is the Python API's session, like %tensorboard's.)
_current: BackgroundServer | None = None
_current_lock = threading.Lock()
_atexit_registered = False
_serving: contextvars.ContextVar[bool] = contextvars.ContextVar("torchscope_serving", default=False)

__all__ = ["ServerError", "Shown", "serve", "show", "stop"]


@dataclass
class Shown:
    """What ``show`` returns: displays as the dashboard in Jupyter, as its URL elsewhere."""

    url: str
    models: list[str]  # the ids served by this call
    height: int = 800
    _server: BackgroundServer | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.running

    def stop(self) -> None:
        """Stop the server (every model it serves): no thread, socket or hook is left behind."""
        global _current
        server = self._server
        if server is None:
            return
        with _current_lock:
            server.stop()
            if _current is server:
                _current = None

    def wait(self) -> None:
        """Block until the server stops; Ctrl+C stops it."""
        try:
            if self._server is not None:
                self._server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __repr__(self) -> str:
        state = "" if self.running else " (stopped)"
        return f"torchscope: {self.url}{state}"

    def _repr_html_(self) -> str:
        url = html.escape(self.url, quote=True)
        if not self.running:
            return f"<p>torchscope: the server at <code>{url}</code> was stopped.</p>"
        title = html.escape("torchscope: " + ", ".join(self.models), quote=True)
        return (
            f'<iframe src="{url}" title="{title}" width="100%" height="{int(self.height)}" '
            'style="border: 1px solid #d0d7de; border-radius: 4px;" loading="lazy"></iframe>'
            f'<p style="font-size: 12px; margin: 4px 0;"><a href="{url}" target="_blank" rel="noopener">'
            f"Open torchscope in a new tab</a> &middot; <code>{url}</code></p>"
        )


def _named(models: Models, name: str | None) -> list[tuple[str, nn.Module]]:
    """(name, module) pairs: a dict's keys, else class names (repeats within one call numbered)."""
    if isinstance(models, nn.Module):
        pairs = [(name or type(models).__name__, models)]
    elif isinstance(models, Mapping):
        if name is not None:
            raise TypeError("name= names one model; a dict of models is already named by its keys")
        pairs = [(str(k), v) for k, v in models.items()]
    elif isinstance(models, Sequence) and not isinstance(models, str | bytes):
        if name is not None:
            raise TypeError("name= names one model; pass a dict {name: model} to name several")
        pairs = []
        counts: dict[str, int] = {}
        for m in models:
            base = type(m).__name__
            counts[base] = counts.get(base, 0) + 1
            pairs.append((base if counts[base] == 1 else f"{base}-{counts[base]}", m))
    else:
        raise TypeError(f"show() takes an nn.Module, a list of them or a dict name -> nn.Module, not {type(models).__name__}")
    if not pairs:
        raise ValueError("show() needs at least one model")
    for n, m in pairs:
        if not isinstance(m, nn.Module):
            raise TypeError(f"{n!r} is a {type(m).__name__}, not an nn.Module")
        if not n.strip():
            raise ValueError("model names must not be blank")
    return pairs


def _paths(value: PathLike | Iterable[PathLike] | None, what: str) -> list[Path]:
    if value is None:
        return []
    items = [value] if isinstance(value, str | os.PathLike) else list(value)
    paths = [Path(p).expanduser().resolve() for p in items]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{what}: no such file: {p}")
    return paths


def _in_kernel() -> bool:
    """True inside a Jupyter kernel, where the returned handle displays itself."""
    return "ipykernel" in sys.modules


def show(
    models: Models,
    *,
    name: str | None = None,
    inputs: Any = None,
    checkpoint: PathLike | Iterable[PathLike] | None = None,
    port: int | None = None,
    height: int = 800,
    data_dir: PathLike | None = None,
    trust_pickle: PathLike | Iterable[PathLike] | None = None,
    max_upload_mb: int | None = None,
    debug: bool = False,
) -> Shown:
    """Serve live models in the dashboard, from a background thread of this process.

    ``models``: an ``nn.Module``, a list of them, or a dict name -> module (names default to
    class names; ``name=`` names a single model). The objects themselves are served: train,
    re-initialise or edit them and the dashboard follows (an open page offers a refresh).
    A model shown again under the same name replaces the old one, on the same server.

    ``inputs``: example inputs for the forward pass of every model in this call (a tensor, a
    tuple of positional arguments, a dict of keyword arguments, ``(args, kwargs)``, or the JSON
    form of ``torchscope serve --inputs``). ``checkpoint``: file(s) to open, as ``--checkpoint``.
    ``port``: a fixed port (e.g. for an SSH tunnel); by default any free one. ``height``: of
    the embedded dashboard in a notebook, in pixels. ``data_dir``, ``trust_pickle``,
    ``max_upload_mb``, ``debug``: as the options of ``torchscope serve``.

    The server listens on 127.0.0.1 only. Returns a handle: ``.url``, ``.stop()``; in
    Jupyter it displays as the dashboard (with a link to open it in a tab); in a script the
    URL is printed.
    """
    global _current
    named = _named(models, name)
    if port is not None and not 0 <= port <= 65535:
        raise ValueError(f"port must be 0-65535, got {port}")
    if max_upload_mb is not None and max_upload_mb <= 0:
        raise ValueError(f"max_upload_mb must be > 0, got {max_upload_mb}")
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise NotADirectoryError(f"data_dir: not a directory: {data_dir}")
    checkpoints = _paths(checkpoint, "checkpoint")
    trusted = _paths(trust_pickle, "trust_pickle")

    from torchscope.inspect.forward.sources import python_inputs

    # Resolved before the server changes: unfit inputs are a clear error and nothing is served.
    resolved = [python_inputs(inputs, module) for _, module in named]

    with _current_lock:
        server = _current if _current is not None and _current.running else None
        if server is None and _current is not None:  # its thread died: release what it held
            _current.stop()
            _current = None
        if server is not None and port not in (None, 0, server.port):
            raise ValueError(
                f"a torchscope server already runs on port {server.port}; call torchscope.stop() first "
                "to move it, or leave port out to add models to it"
            )
        if server is None:
            settings = Settings(specs=[], port=port or 0, debug=debug)
            _configure(settings, data_dir, trusted, max_upload_mb)
            server = _current = _start(settings)
        else:
            _configure(server.settings, data_dir, trusted, max_upload_mb)
            store = getattr(server.app.state, "checkpoints", None) if server.app is not None else None
            if store is not None and trusted:
                store.trusted_paths.extend(trusted)
        ids = []
        for (model_name, module), model_inputs in zip(named, resolved, strict=True):
            loaded = server.registry.add(
                model_name, f"python: {type(module).__module__}.{type(module).__qualname__}", module,
                meta=is_meta(module), replace=True,
            )  # fmt: skip
            loaded.doc = doc_line(type(module))
            watch = ModelWatch(module, server.hooks)
            watch.check()  # the baseline: what the dashboard is shown first
            loaded.watch = watch
            loaded.inputs = model_inputs
            ids.append(loaded.id)
        if checkpoints and server.app is not None:
            store = server.app.state.checkpoints
            known = len(store.failures)
            store.open_startup(checkpoints)  # as --checkpoint: a file that cannot be opened is reported, not fatal
            for failure in store.failures[known:]:
                warnings.warn(f"torchscope: checkpoint {failure.path}: {failure.message}", stacklevel=2)

    url = f"{server.url}/models/{ids[0]}" if len(ids) == 1 else f"{server.url}/"
    shown = Shown(url=url, models=ids, height=height, _server=server)
    if not _in_kernel():
        print(f"torchscope: {', '.join(n for n, _ in named)} at {url}", flush=True)
        if not _interactive() and not _serving.get():
            print("torchscope: serving while this script runs (torchscope.serve() waits for Ctrl+C)", flush=True)
    return shown


def _interactive() -> bool:
    return hasattr(sys, "ps1") or bool(sys.flags.interactive)


def _start(settings: Settings) -> BackgroundServer:
    server = BackgroundServer(settings, ModelRegistry()).start()
    global _atexit_registered
    if not _atexit_registered:
        # A script that ends while serving: shut down cleanly rather than kill the thread mid-request.
        atexit.register(stop)
        _atexit_registered = True
    return server


def _configure(settings: Settings, data_dir: PathLike | None, trusted: list[Path], max_upload_mb: int | None) -> None:
    """Options that a later show() call may set on the running server."""
    if data_dir is not None:
        settings.data_dir = Path(data_dir).expanduser().resolve()
    if trusted:
        settings.trust_pickle = [*settings.trust_pickle, *trusted]
    if max_upload_mb is not None:
        settings.max_upload_mb = max_upload_mb


def serve(
    models: Models,
    *,
    name: str | None = None,
    inputs: Any = None,
    checkpoint: PathLike | Iterable[PathLike] | None = None,
    port: int | None = None,
    data_dir: PathLike | None = None,
    trust_pickle: PathLike | Iterable[PathLike] | None = None,
    max_upload_mb: int | None = None,
    debug: bool = False,
) -> None:
    """``show``, blocking until Ctrl+C (for scripts); then the server stops cleanly. Prints the URL."""
    token = _serving.set(True)
    try:
        shown = show(
            models, name=name, inputs=inputs, checkpoint=checkpoint, port=port, data_dir=data_dir,
            trust_pickle=trust_pickle, max_upload_mb=max_upload_mb, debug=debug,
        )  # fmt: skip
    finally:
        _serving.reset(token)
    if _in_kernel():
        print(f"torchscope: {shown.url}", flush=True)
    print("torchscope: serving until Ctrl+C", flush=True)
    shown.wait()
    print("torchscope: stopped", flush=True)


def stop() -> None:
    """Stop this process's torchscope server, if one runs."""
    global _current
    with _current_lock:
        server, _current = _current, None
        if server is not None:
            server.stop()
