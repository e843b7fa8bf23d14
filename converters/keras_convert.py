"""Converts a saved Keras LSTM model into verified fused-LSTM `.tflite` files.

Writes, per quantization, the sequence model and the step model (a chunk model
with --steps_per_call > 1), each with a `.json` metadata sidecar, then runs
every file on held-out sequences against the Keras model fed the same way
(`stateful=True`, steps_per_call steps per call) and prints file size and max
abs error. Exits 1 when a float32 file is off by more than 1e-5, 2 when the
model has a layer tflstm refuses (the message says what to do).

Examples:

    python -m converters.keras_convert --model=classifier.keras --out_dir=models \
        --quantize=float32,dynamic,int8
    # a model ending in Flatten -> Dense over a 7-step window: a chunk model
    python -m converters.keras_convert --model=window.h5 --out_dir=models --steps_per_call=7

Held-out data: `--data=FILE.npz` with `x` float32 [n, time, features] (and
optionally `calibration`, the same layout, for int8); without it, seeded
standard-normal sequences of the model's input shape, 3 windows long.
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import flags

from tflstm.cli import absl_app
from tflstm.console import error_line, setup_logging
from tflstm.format import QUANTIZATIONS, TOLERANCES

_MODEL = flags.DEFINE_string("model", None, "Saved Keras model: .keras, .h5 or a SavedModel directory.", required=True)
_OUT = flags.DEFINE_string("out_dir", None, "Output folder.", required=True)
_QUANTIZE = flags.DEFINE_list("quantize", list(QUANTIZATIONS), f"Quantizations to write, of {QUANTIZATIONS}.")
_STEPS = flags.DEFINE_integer("steps_per_call", 1, "Time steps per call of the streaming model.", lower_bound=1)
_DATA = flags.DEFINE_string("data", None, "Held-out .npz (x, optional calibration); default: synthetic.")
_SEQUENCES = flags.DEFINE_integer("num_sequences", 16, "Synthetic held-out sequences.", lower_bound=1)
_CALIBRATION = flags.DEFINE_integer("calibration_size", 100, "Sequences used to calibrate int8.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the synthetic data.")

flags.register_validator("model", lambda p: p is None or Path(p).exists(), message="--model must exist")
flags.register_validator("quantize", lambda v: bool(v) and set(v) <= set(QUANTIZATIONS),
                         message=f"--quantize takes a comma-separated list of {', '.join(QUANTIZATIONS)}")


def main(argv: list[str]) -> int:
    del argv
    setup_logging()
    from tflstm.convert import UnsupportedModelError
    from tflstm.convert.export import float32_failures, table
    from tflstm.convert.keras_export import convert_and_verify_keras, held_out_sequences
    from tflstm.convert.keras_model import load_model, read_graph

    try:
        model = load_model(_MODEL.value)
        graph = read_graph(model)
        x, calibration = held_out_sequences(
            graph.window, graph.depth, _STEPS.value, data=_DATA.value, sequences=_SEQUENCES.value,
            calibration_size=_CALIBRATION.value, seed=_SEED.value,
        )
        reports = convert_and_verify_keras(model, Path(_OUT.value), _QUANTIZE.value, x, calibration, _STEPS.value)
    except UnsupportedModelError as err:
        print(error_line(f"cannot convert {_MODEL.value}: {err}"), file=sys.stderr)
        return 2
    print(table(reports, None, reference="Keras"))
    failures = float32_failures(reports)
    for r in failures:
        print(error_line(f"{r.name} max abs error {r.max_abs_error:.2e} > {TOLERANCES['float32']}"), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    absl_app.run(main)
