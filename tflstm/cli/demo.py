"""Runs the demos (TensorFlow): train, convert to every quantization, stream, print tables.

digits   scikit-learn's 8x8 digits read row by row (8 steps of 8 raw pixels):
         accuracy, size and error against TensorFlow of every model.
motions  BasicMotions smartwatch recordings (accelerometer + gyroscope, 10 Hz,
         4 activities) streamed sample by sample: accuracy per quantization,
         per-step latency, how many samples until each activity is recognized,
         and a plot of class probabilities over time (probabilities.png).

Writes OUT/digits/ and OUT/motions/ (checkpoint/, models/); each demo prints its
wall time. The motions data ships inside the aeon wheel: pip install --no-deps
'aeon==1.6.*' (its files only are read; `make demo` installs it).

    tflstm demo                  # both, into demo_out/
    tflstm demo motions --epochs 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tflstm.cli.common import add_verbose, check_output_dir, positive_int, require_extras
from tflstm.console import error_line, log, quiet_tensorflow

DEMOS = ("digits", "motions")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers `tflstm demo`."""
    parser = subparsers.add_parser(
        "demo", help="train, convert and stream the digits and smartwatch-motion demos (TensorFlow)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("which", nargs="?", default="all", choices=("all", *DEMOS), help="which demo (default: all)")
    parser.add_argument("--out-dir", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument("--epochs", type=positive_int, help="training epochs (default: digits 15, motions 12)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialization and shuffling (default: 0)")
    add_verbose(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Runs `tflstm demo`; returns the exit code."""
    require_extras("demo", "tensorflow", "sklearn", "matplotlib")
    out = check_output_dir(args.out_dir, "--out-dir")
    selected = DEMOS if args.which == "all" else (args.which,)
    if "motions" in selected:
        from tflstm.train.motions import data_dir

        data_dir()  # the aeon wheel's files are there, or a one-line error with the pip command
    failed = []
    with quiet_tensorflow(args.verbose):
        from tflstm.convert.export import float32_failures
        from tflstm.demos import digits, motions

        for name in selected:
            started = time.monotonic()
            epochs = {} if args.epochs is None else {"epochs": args.epochs}
            if name == "digits":
                reports = digits.run(out / name, seed=args.seed, **epochs)
            else:
                reports, _ = motions.run(out / name, seed=args.seed, **epochs)
            failed += [r.name for r in float32_failures(reports)]
            log.info("%s demo: %.0f s wall time; files in %s\n", name, time.monotonic() - started, out / name)
    if failed:
        print(error_line(f"float32 models off TensorFlow by more than the tolerance: {', '.join(failed)}"),
              file=sys.stderr)
        return 1
    return 0
