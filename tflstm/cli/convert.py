"""Converts a checkpoint into streaming models (TensorFlow), each verified against TensorFlow.

Writes, per quantization, the sequence model and the step (streaming) models
(`sequence_<q>.tflite`, `step_<q>.tflite`, `step_b<N>_<q>.tflite`), each with a
`.json` metadata sidecar and the training normalization in its metadata, then
runs every file on held-out windows and prints its size, accuracy and max abs
error against TensorFlow (`report.json` too). Exits 1 if a float32 file is off
by more than 1e-5.

Held-out windows: --data FILE (.npz or .csv, as `tflstm train` takes; labels
optional), else the checkpoint's held_out.npz (`tflstm train` writes it), else
the test split of the built-in dataset the spec names.

    tflstm convert runs/walks/checkpoint                 # -> runs/walks/models/
    tflstm convert runs/walks/checkpoint --quantize float32,dynamic --step-batch-sizes 1,64
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tflstm.cli.common import add_verbose, check_output_dir, comma_list, positive_int, require_extras
from tflstm.console import error_line, quiet_tensorflow
from tflstm.format import QUANTIZATIONS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers `tflstm convert`."""
    parser = subparsers.add_parser(
        "convert", help="convert a checkpoint into verified .tflite models (TensorFlow)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", help="a checkpoint folder (spec.json, model.ckpt.*), e.g. from `tflstm train`")
    parser.add_argument("--out-dir", metavar="DIR", help="output folder (default: models/ next to the checkpoint folder)")
    parser.add_argument("--quantize", type=comma_list(str, QUANTIZATIONS), default=list(QUANTIZATIONS),
                        help=f"comma-separated quantizations (default: {','.join(QUANTIZATIONS)})")
    parser.add_argument("--step-batch-sizes", type=comma_list(positive_int), default=[1], metavar="N,...",
                        help="batch sizes of the step models, e.g. 1,64 (default: 1)")
    parser.add_argument("--data", metavar="FILE", help="held-out windows to verify with (.npz or .csv)")
    parser.add_argument("--int8-io", action="store_true", help="int8 inputs and outputs for int8 models")
    add_verbose(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Runs `tflstm convert`; returns the exit code."""
    require_extras("convert", "tensorflow")
    from tflstm.train import data
    from tflstm.train.spec import load_checkpoint_spec

    checkpoint = Path(args.checkpoint)
    spec = load_checkpoint_spec(checkpoint)
    out = check_output_dir(args.out_dir or checkpoint.absolute().parent / "models", "--out-dir")
    held, calibration = data.verification_data(checkpoint, args.data, spec)
    with quiet_tensorflow(args.verbose):
        from tflstm.convert import ConversionError, export

        try:
            reports = export.convert_and_verify(
                checkpoint, out, args.quantize, held.x, held.y, calibration, args.step_batch_sizes, args.int8_io
            )
        except ConversionError as err:
            print(error_line(err), file=sys.stderr)
            return 1
    print(export.table(reports, None))
    print(f"\n{len(reports)} models in {out}")
    failures = export.float32_failures(reports)
    for report in failures:
        print(error_line(f"{report.name}: max abs error {report.max_abs_error:.2e} above the float32 tolerance"),
              file=sys.stderr)
    return 1 if failures else 0
