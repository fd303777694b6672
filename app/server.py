"""A torchscope server in a background thread of the current process (``torchscope.show``).

uvicorn runs the app on its own event loop in one thread, on a socket bound before it starts
(no race between choosing a port and binding it). ``stop()`` waits for the thread and closes
the socket: nothing is left behind, and the port is free again.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from torchscope.inspect.live import TorchHooks
from torchscope.inspect.registry import ModelRegistry
from torchscope.main import create_app
from torchscope.settings import Settings

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class ServerError(RuntimeError):
    """The background server could not start (port taken, startup failed)."""


class BackgroundServer:
    """uvicorn serving ``create_app(settings, registry)`` from a thread, on 127.0.0.1 only.

    ``hooks`` (torch's registration and optimizer-step hooks, which live models' change
    detection reads) are installed while the server runs and removed by ``stop()``.
    """

    def __init__(self, settings: Settings, registry: ModelRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.hooks = TorchHooks()
        self.app: FastAPI | None = None
        self.port = 0
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> BackgroundServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # A fixed port (for an SSH tunnel) may still be in TIME_WAIT from a stopped server.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((LOOPBACK, self.settings.port))
        except OSError as exc:
            sock.close()
            raise ServerError(f"cannot listen on {LOOPBACK}:{self.settings.port}: {exc.strerror or exc}") from None
        self._sock = sock
        self.port = sock.getsockname()[1]
        self.settings.host, self.settings.port = LOOPBACK, self.port
        self.hooks.install()
        self.app = create_app(self.settings, registry=self.registry)
        # log_config=None: uvicorn leaves the user's logging configuration alone.
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="info" if self.settings.debug else "warning",
            access_log=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"torchscope-server-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServerError("the torchscope server did not start (see the log above)")
            time.sleep(0.01)
        self._loop = self._server.servers[0].get_loop() if self._server.servers else None
        return self

    def stop(self) -> None:
        """Shut uvicorn down, wait for its thread, close the socket, remove torch's hooks."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(STOP_TIMEOUT_S)
            # The thread pool that ran the endpoints (AnyIO worker threads of this server's event
            # loop) is told to stop when the loop ends; wait until its threads have.
            for worker in threading.enumerate():
                if self._loop is not None and getattr(worker, "loop", None) is self._loop:
                    worker.join(STOP_TIMEOUT_S)
        if self._sock is not None:
            self._sock.close()
        self.hooks.remove()
        self._thread = None
        self._sock = None

    def wait(self) -> None:
        """Block until the server stops (KeyboardInterrupt reaches the caller)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.25)
