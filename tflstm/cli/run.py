"""Streams rows of features through a step model, one time step per row; prints each output.

Without --input, CSV rows are read from standard input and each output is printed
as soon as its row has been stepped, so a live source can be piped in:

    tail -f sensor.csv | tflstm run step_float32.tflite --save-state sensor.state

CSV rows hold one time step's raw features, comma-separated (the model's
normalization is applied for you); a first line without any number is a header
and skipped, any other line that does not parse is an error naming the line.
`.npy` input is numbers [steps, features]. Outputs are CSV lines on stdout (one
per step), or --output FILE.csv|FILE.npy.

--save-state writes the state after the last row stepped: at the end of the
input, on Ctrl-C or SIGTERM (exit code 130 or 143), and when a row is refused
(exit code 2), so --load-state continues from there. Needs only the runtime:
numpy and ai-edge-litert or tflite-runtime. `python -m tflstm.runtime` is the
same command.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tflstm.cli.common import check_output_file, positive_int
from tflstm.cli.rows import OutputSink, read_rows
from tflstm.cli.stopping import StopSignals, Stopped
from tflstm.console import UserError
from tflstm.runtime.backend import BACKENDS

BACKEND_CHOICES = ("auto", *BACKENDS)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers `tflstm run`."""
    parser = subparsers.add_parser(
        "run", help="stream CSV or .npy rows through a step model (runtime only, no TensorFlow)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="a fused-LSTM step model (.tflite)")
    parser.add_argument("--input", metavar="FILE", help="rows to stream: .csv or .npy (default: CSV on stdin)")
    parser.add_argument("--output", metavar="FILE", help="write outputs to .csv or .npy instead of stdout")
    parser.add_argument("--load-state", metavar="FILE", help="start from this state file")
    parser.add_argument("--save-state", metavar="FILE", help="write the state to this file when the stream stops")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                        help="interpreter backend (default: auto, the first one installed)")
    parser.add_argument("--threads", type=positive_int, default=1, help="interpreter threads (default: 1)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Runs `tflstm run`; returns the exit code."""
    if args.input and not Path(args.input).is_file():
        raise UserError(f"--input {args.input}: no such file.")
    for path, flag in ((args.output, "--output"), (args.save_state, "--save-state")):
        if path:
            check_output_file(path, flag)
    from tflstm.runtime import InputError, StreamingModel

    model = StreamingModel(args.model, num_threads=args.threads, backend=args.backend)
    if args.load_state:
        model.load_state(args.load_state)
    sink = OutputSink(args.output, sys.stdout)
    stepped, stopped, refused = 0, None, None
    with StopSignals() as stop:  # signals now wait for the row in hand, and are ignored while saving
        try:
            for row in stop.rows(read_rows(args.input, sys.stdin)):
                try:
                    y = model.step(row.values)
                except InputError as err:
                    raise UserError(f"{row.where}: {err}") from None
                sink.write(y)
                stepped += 1
                stop.check()
        except Stopped as err:
            stopped = err
        except UserError as err:
            refused = err
        except BrokenPipeError:  # the reader of stdout went away: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sink.close()
        saved = ""
        if args.save_state:
            model.save_state(args.save_state)
            saved = f"; the state after {stepped} row(s) was saved to {args.save_state}"
    if refused is not None:
        raise UserError(f"{refused}{saved}")
    if stopped is not None:
        print(f"tflstm run: {stopped} after {stepped} row(s){saved}", file=sys.stderr)
        return stopped.exit_code
    return 0
