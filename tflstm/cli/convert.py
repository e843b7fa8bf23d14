"""Converts a checkpoint or a saved Keras model into streaming models (TensorFlow), each verified.

Writes, per quantization, the sequence model and the step (streaming) models
(`sequence_<q>.tflite`, `step_<q>.tflite`, `step_b<N>_<q>.tflite`, or
`step_k<K>_<q>.tflite` for a Keras chunk model), each with a `.json` metadata
sidecar and the training normalization in its metadata, then runs every file on
held-out windows and prints its size, accuracy and max abs error against
TensorFlow (Keras for a Keras model; `report.json` too). Exits 1 if a float32 file
is off by more than 1e-5.

SOURCE is a checkpoint folder (spec.json, model.ckpt.*, from `tflstm train`) or a
saved Keras model (.keras, .h5, or a tf-keras SavedModel folder), which is rebuilt
with fused LSTM layers (`tflstm.convert.from_keras`).

Held-out windows: --data FILE (.npz or .csv, as `tflstm train` takes; labels
optional), else the checkpoint's held_out.npz (`tflstm train` writes it), else
the test split of the built-in dataset the spec names; for a Keras model, --data
FILE.npz with `x` [n, time, features], else synthetic sequences.

    tflstm convert runs/walks/checkpoint                 # -> runs/walks/models/
    tflstm convert runs/walks/checkpoint --quantize float32,dynamic --step-batch-sizes 1,64
    tflstm convert classifier.keras --out-dir models     # a Keras model
    tflstm convert window.h5 --steps-per-call 7          # a Keras window model, as a chunk model
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tflstm.cli.common import add_verbose, check_output_dir, comma_list, positive_int, require_extras
from tflstm.console import UserError, error_line, quiet_tensorflow
from tflstm.format import QUANTIZATIONS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers `tflstm convert`."""
    parser = subparsers.add_parser(
        "convert", help="convert a checkpoint into verified .tflite models (TensorFlow)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", help="a checkpoint folder (spec.json, model.ckpt.*), e.g. from `tflstm train`, "
                                       "or a saved Keras model (.keras, .h5, SavedModel folder)")
    parser.add_argument("--out-dir", metavar="DIR", help="output folder (default: models/ next to the source)")
    parser.add_argument("--quantize", type=comma_list(str, QUANTIZATIONS), default=list(QUANTIZATIONS),
                        help=f"comma-separated quantizations (default: {','.join(QUANTIZATIONS)})")
    parser.add_argument("--step-batch-sizes", type=comma_list(positive_int), default=[1], metavar="N,...",
                        help="batch sizes of the step models, e.g. 1,64 (default: 1)")
    parser.add_argument("--data", metavar="FILE", help="held-out windows to verify with (.npz or .csv)")
    parser.add_argument("--int8-io", action="store_true", help="int8 inputs and outputs for int8 models")
    parser.add_argument("--steps-per-call", type=positive_int, default=1, metavar="K",
                        help="Keras models: time steps per call of the streaming model (a chunk model; "
                             "the window of a model ending in Flatten -> Dense). Default: 1")
    add_verbose(parser)
    parser.set_defaults(run=run)


KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def is_keras_model(path: Path) -> bool:
    """A saved Keras model: a .keras or .h5 file, or a SavedModel folder."""
    return path.suffix in KERAS_SUFFIXES or (path.is_dir() and (path / "saved_model.pb").is_file())


def run(args: argparse.Namespace) -> int:
    """Runs `tflstm convert`; returns the exit code."""
    require_extras("convert", "tensorflow")
    source = Path(args.source)
    if not source.exists():
        raise UserError(f"{source} does not exist: give a checkpoint folder or a saved Keras model.")
    keras = is_keras_model(source)
    if keras and (args.step_batch_sizes != [1] or args.int8_io):
        raise UserError("--step-batch-sizes and --int8-io apply to checkpoints; a Keras model converts at batch 1.")
    if not keras and args.steps_per_call != 1:
        raise UserError("--steps-per-call applies to Keras models; checkpoints convert step models (1 step per call).")
    out = check_output_dir(args.out_dir or source.absolute().parent / "models", "--out-dir")
    held = None if keras else _checkpoint_data(source, args.data)  # checked before TensorFlow is imported
    with quiet_tensorflow(args.verbose):
        from tflstm.convert import ConversionError, UnsupportedModelError, export

        try:
            if keras:
                reports = _convert_keras(source, out, args)
            else:
                (x, y), calibration = held
                reports = export.convert_and_verify(
                    source, out, args.quantize, x, y, calibration, args.step_batch_sizes, args.int8_io
                )
        except UnsupportedModelError as err:
            raise UserError(f"cannot convert {source}: {err}") from err
        except ConversionError as err:
            print(error_line(err), file=sys.stderr)
            return 1
    print(export.table(reports, None, reference="Keras" if keras else "TF"))
    print(f"\n{len(reports)} models in {out}")
    failures = export.float32_failures(reports)
    for report in failures:
        print(error_line(f"{report.name}: max abs error {report.max_abs_error:.2e} above the float32 tolerance"),
              file=sys.stderr)
    return 1 if failures else 0


def _checkpoint_data(checkpoint: Path, data_file: str | None) -> tuple[tuple[Any, Any], Any]:
    """((x, y), calibration) held-out windows of a checkpoint, read without TensorFlow."""
    from tflstm.train import data
    from tflstm.train.spec import load_checkpoint_spec

    held, calibration = data.verification_data(checkpoint, data_file, load_checkpoint_spec(checkpoint))
    return (held.x, held.y), calibration


def _convert_keras(path: Path, out: Path, args: argparse.Namespace) -> list:
    from tflstm.convert.keras_export import convert_and_verify_keras, held_out_sequences
    from tflstm.convert.keras_model import load_model, read_graph

    model = load_model(path)
    graph = read_graph(model)
    x, calibration = held_out_sequences(graph.window, graph.depth, args.steps_per_call, data=args.data)
    return convert_and_verify_keras(model, out, args.quantize, x, calibration, args.steps_per_call)
