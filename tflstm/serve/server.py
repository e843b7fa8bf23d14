"""`serve()`: load a model, open its pool and store, and serve the HTTP API with uvicorn until stopped."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn

from tflstm.runtime.model import StreamingModel
from tflstm.runtime.pool import StreamPool
from tflstm.serve.app import make_app
from tflstm.serve.defaults import DEFAULT_PORT, MAX_BODY_BYTES



def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def serve(
    model: str | Path,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    store: str | Path | None = None,
    max_resident: int = 10_000,
    idle_ttl: float | None = None,
    flush_interval: float | None = 1.0,
    name: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    backend: str = "auto",
    log_level: str = "warning",
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serves `model` over HTTP until SIGINT/SIGTERM, then flushes every state to the store and returns.

    Args:
        model: a fused-LSTM step model (.tflite).
        host, port: where to listen; port 0 picks a free port. Default: 127.0.0.1:8501.
        store: an SQLite state store file (created when missing); None keeps
            states in memory only (lost when the server stops). Default: None.
        max_resident: keys kept in memory (see `StreamPool`). Default: 10,000.
        idle_ttl: seconds after which an idle key leaves memory; None: never.
        flush_interval: seconds between automatic flushes; None: only at
            shutdown and on POST /v1/flush. Default: 1.0 (a crash loses at
            most about a second of steps).
        name: model name in TensorFlow-Serving-style paths. Default: the file's stem.
        max_body_bytes: largest request body. Default: 1 MiB.
        backend: interpreter backend (see `StreamingModel`). Default: "auto".
        log_level: uvicorn's log level. Default: "warning".
        announce: called with the server's URL once it listens. Default: print
            a line to stdout.

    Raises:
        ModelError, StateError: the model or the store cannot be opened.
        OSError: the address cannot be bound.
    """
    if type(port) is not int or not 0 <= port <= 65535:
        raise ValueError(f"`port` must be an int 0-65535, got {port!r}.")
    streaming = StreamingModel(model, backend=backend)
    pool = StreamPool(streaming, store=store, max_resident=max_resident, idle_ttl=idle_ttl, flush_interval=flush_interval)
    try:
        name = name or Path(model).stem
        app = make_app(pool, name=name, max_body_bytes=max_body_bytes)
        sock = bind(host, port)
    except BaseException:
        pool.close()
        raise
    address = sock.getsockname()
    url = f"http://{f'[{address[0]}]' if sock.family == socket.AF_INET6 else address[0]}:{address[1]}"
    (announce or _print)(url)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=10)
    with sock:
        uvicorn.Server(config).run(sockets=[sock])
    if not pool.closed:  # the app never started (uvicorn failed before the lifespan ran)
        pool.close()


def _print(url: str) -> None:
    print(f"tflstm serve: listening on {url} (Ctrl-C or SIGTERM stops it and flushes the pool)", file=sys.stdout, flush=True)
