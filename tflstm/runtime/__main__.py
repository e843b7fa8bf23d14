"""Streams rows of features through a fused-LSTM step model, one time step per row.

Usage:
    python -m tflstm.runtime MODEL.tflite [--input rows.csv|rows.npy] [--output out.csv|out.npy]
                             [--load-state S] [--save-state S] [--backend auto] [--threads 1]

Without --input, CSV rows are read from standard input and each output is printed
as soon as its row has been stepped, so a live source can be piped in:

    tail -f sensor.csv | python -m tflstm.runtime step_float32.tflite

CSV rows hold one time step's features, comma-separated; a first line that is not
numeric is taken as a header and skipped. `.npy` input is float [steps, features].
Outputs are printed as CSV (one line per step) or written to --output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

from tflstm.runtime.backend import BACKENDS
from tflstm.runtime.errors import TFLSTMError
from tflstm.runtime.model import StreamingModel


def csv_rows(lines: Iterable[str], source: str) -> Iterator[np.ndarray]:
    """Parses CSV lines into float32 rows, skipping a non-numeric first line and blank lines."""
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            yield np.array([float(v) for v in line.split(",")], dtype=np.float32)
        except ValueError:
            if number == 1:
                continue  # a header
            raise ValueError(f"{source}, line {number}: expected comma-separated numbers, got {line!r}") from None


def read_rows(path: str | None, stdin: TextIO) -> Iterator[np.ndarray]:
    """Rows from a .npy or .csv file, or CSV from `stdin` when `path` is None."""
    if path is None:
        return csv_rows(stdin, "<stdin>")
    if path.endswith(".npy"):
        array = np.load(path)
        if array.ndim != 2:
            raise ValueError(f"{path}: expected a 2-D array [steps, features], got shape {array.shape}.")
        return iter(array)
    return csv_rows(Path(path).read_text().splitlines(), path)


def _format(y: np.ndarray) -> str:
    return ",".join(f"{v:.6g}" for v in np.ravel(y))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tflstm.runtime", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a fused-LSTM step model (.tflite)")
    parser.add_argument("--input", help="rows to stream: .csv or .npy (default: CSV on stdin)")
    parser.add_argument("--output", help="write outputs to .csv or .npy instead of printing them")
    parser.add_argument("--load-state", help="start from this state file")
    parser.add_argument("--save-state", help="write the final state to this file")
    parser.add_argument("--backend", default="auto", choices=("auto", *BACKENDS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        model = StreamingModel(args.model, num_threads=args.threads, backend=args.backend)
        if args.load_state:
            model.load_state(args.load_state)
        outputs = []
        for row in read_rows(args.input, sys.stdin):
            y = model.step(row)
            if args.output:
                outputs.append(np.ravel(y))
            else:
                print(_format(y), flush=True)
        if args.output:
            stacked = np.stack(outputs) if outputs else np.zeros((0, 0), np.float32)
            if args.output.endswith(".npy"):
                np.save(args.output, stacked)
            else:
                Path(args.output).write_text("".join(_format(y) + "\n" for y in stacked))
        if args.save_state:
            model.save_state(args.save_state)
    except (TFLSTMError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
