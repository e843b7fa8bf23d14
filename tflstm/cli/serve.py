"""Serves a fused-LSTM step model over HTTP: keyed streams, states in an SQLite store.

Usage:
    tflstm serve MODEL.tflite [--host 127.0.0.1] [--port 8501] [--store states.db]
                           [--max-resident 10000] [--idle-ttl SECONDS] [--flush-interval 1.0] [--name NAME]

Then, for example:

    curl -s localhost:8501/v1/step -d '{"key": "sensor-1", "x": [0.1, 0.2, 0.3]}'
    curl -s localhost:8501/v1/models/step_float32:predict -d '{"instances": [{"key": "a", "x": [0, 0, 1]}]}'

Ctrl-C or SIGTERM stops it after the requests in flight and flushes every state
to the store; a new server on the same store resumes every key.
"""

from __future__ import annotations

import argparse
import sys

from tflstm.cli.common import require_extras
from tflstm.console import EXIT_INTERRUPTED, EXIT_USER_ERROR, error_line
from tflstm.runtime.backend import BACKENDS
from tflstm.runtime.errors import TFLSTMError
from tflstm.serve.defaults import DEFAULT_PORT, MAX_BODY_BYTES


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535, got {text!r}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers `tflstm serve`."""
    parser = subparsers.add_parser(
        "serve", help="serve a step model over HTTP: keyed streams, states in a store (runtime + serve extra)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run)
    parser.add_argument("model", help="a fused-LSTM step model (.tflite)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--store", help="SQLite state store file (default: states in memory, lost at exit)")
    parser.add_argument("--max-resident", type=int, default=10_000, help="keys kept in memory (default: %(default)s)")
    parser.add_argument("--idle-ttl", type=_seconds, help="seconds before an idle key leaves memory (default: never)")
    parser.add_argument("--flush-interval", type=_seconds, default=1.0,
                        help="seconds between flushes to the store (default: %(default)s)")
    parser.add_argument("--name", help="model name in /v1/models/<name> paths (default: the file's stem)")
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES, help="largest request (default: %(default)s)")
    parser.add_argument("--backend", default="auto", choices=("auto", *BACKENDS))
    parser.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))


def run(args: argparse.Namespace) -> int:
    """Runs `tflstm serve` until stopped; returns the exit code (2 with one line on stderr for a user error)."""
    require_extras("serve", "starlette", "uvicorn")
    from tflstm.serve.server import serve

    try:
        serve(args.model, args.host, args.port, store=args.store, max_resident=args.max_resident, idle_ttl=args.idle_ttl,
              flush_interval=args.flush_interval, name=args.name, max_body_bytes=args.max_body_bytes,
              backend=args.backend, log_level=args.log_level)
    except (TFLSTMError, ValueError, OSError) as err:
        print(error_line(err), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:  # before uvicorn took over the signals
        return EXIT_INTERRUPTED
    return 0
