"""Converts a tflstm checkpoint into verified fused-LSTM `.tflite` files (`tflstm convert` in absl form).

Writes, per quantization, the sequence model and the step (streaming) models,
each with a `.json` metadata sidecar, then runs every file on held-out sequences
against TensorFlow and prints max abs error and accuracy. Exits 1 when a
float32 file is off by more than 1e-5; a mistake in the flags or data is one
`error:` line and exit code 2.

Example:

    python -m converters.tflstm_convert --checkpoint_dir=demo_out/digits/checkpoint \
        --out_dir=demo_out/digits/models --quantize=float32,dynamic,int8 --step_batch_sizes=1,64

Held-out data: `--data=FILE` (.npz with `x` float [n, time, depth] and optional
`y` int [n], or .csv as `tflstm train` takes); without it, the checkpoint's
held_out.npz, else the test split of the dataset named in spec.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import flags

from tflstm.cli import absl_app
from tflstm.console import error_line
from tflstm.format import QUANTIZATIONS, TOLERANCES

_CHECKPOINT = flags.DEFINE_string("checkpoint_dir", None, "Checkpoint directory (spec.json + model.ckpt).", required=True)
_OUT = flags.DEFINE_string("out_dir", None, "Output folder.", required=True)
_QUANTIZE = flags.DEFINE_list("quantize", list(QUANTIZATIONS), f"Quantizations to write, of {QUANTIZATIONS}.")
_BATCHES = flags.DEFINE_list("step_batch_sizes", ["1"], "Batch sizes of the step models.")
_DATA = flags.DEFINE_string("data", None, "Held-out .npz or .csv; default: held_out.npz or the spec's dataset.")
_CALIBRATION = flags.DEFINE_integer("calibration_size", 100, "Sequences used to calibrate int8.", lower_bound=1)
_INT8_IO = flags.DEFINE_bool("int8_io", False, "int8 inputs/outputs for int8 models.")

flags.register_validator("checkpoint_dir", lambda p: p is None or Path(p, "spec.json").is_file(),
                         message="--checkpoint_dir must contain spec.json")
flags.register_validator("out_dir", lambda p: p is None or not Path(p).exists() or Path(p).is_dir(),
                         message="--out_dir must be a folder, not a file")
flags.register_validator("quantize", lambda v: bool(v) and set(v) <= set(QUANTIZATIONS),
                         message=f"--quantize takes a comma-separated list of {', '.join(QUANTIZATIONS)}")
flags.register_validator("step_batch_sizes", lambda v: all(s.isdigit() and int(s) > 0 for s in v),
                         message="--step_batch_sizes must be positive integers")


def main(argv: list[str]) -> int:
    del argv
    from tflstm.convert import export
    from tflstm.train import data
    from tflstm.train.spec import load_checkpoint_spec

    checkpoint = Path(_CHECKPOINT.value)
    held, calibration = data.verification_data(checkpoint, _DATA.value, load_checkpoint_spec(checkpoint))
    reports = export.convert_and_verify(
        checkpoint, Path(_OUT.value), _QUANTIZE.value, held.x, held.y,
        calibration[: _CALIBRATION.value], [int(b) for b in _BATCHES.value], _INT8_IO.value,
    )
    print(export.table(reports, None))
    failures = export.float32_failures(reports)
    for r in failures:
        print(error_line(f"{r.name} max abs error {r.max_abs_error:.2e} > {TOLERANCES['float32']}"), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    absl_app.run(main)
