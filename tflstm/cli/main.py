"""tflstm: LSTM models from training to streaming, one time step at a time.

From your data to a model that streams on a device:

    tflstm train --data my.npz --out-dir runs/my     # TensorFlow: writes runs/my/checkpoint
    tflstm convert runs/my/checkpoint                # TensorFlow: writes runs/my/models/*.tflite
    tflstm info runs/my/models/step_float32.tflite   # what the model takes and keeps
    tflstm run runs/my/models/step_float32.tflite --input rows.csv
    tflstm bench runs/my/models/step_dynamic.tflite  # per-step latency here
    tflstm serve runs/my/models/step_float32.tflite --store states.db   # keyed streams over HTTP
    tflstm demo                                      # digits and smartwatch-motion demos

`run`, `info` and `bench` need only the runtime (numpy and ai-edge-litert or
tflite-runtime), `serve` the runtime and the serve extra (pip install
'tflstm[litert,serve]'); `train`, `convert` and `demo` need the training extra
(pip install 'tflstm[train,demo]'). `tflstm COMMAND --help` says more.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tflstm import __version__
from tflstm.cli.common import Parser
from tflstm.console import EXIT_INTERRUPTED, EXIT_USER_ERROR, USER_ERRORS, error_line

COMMANDS = ("train", "convert", "run", "info", "bench", "serve", "demo")
"""Subcommands, each a module `tflstm.cli.<name>` with `add_parser(subparsers)`."""


def build_parser() -> argparse.ArgumentParser:
    """The `tflstm` parser with every subcommand."""
    parser = Parser(prog="tflstm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"tflstm {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True,
                                     parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"tflstm.cli.{name}").add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs `tflstm` with `argv` (default: the command line); returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as err:
        if getattr(args, "verbose", False):
            raise
        print(error_line(err), file=sys.stderr)
        return EXIT_USER_ERROR
