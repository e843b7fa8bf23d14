"""Converts a tflstm checkpoint into verified fused-LSTM `.tflite` files.

Writes, per quantization, the sequence model and the step (streaming) models,
each with a `.json` metadata sidecar, then runs every file on held-out sequences
against TensorFlow and prints max abs error and accuracy. Exits non-zero when a
float32 file is off by more than 1e-5.

Example:

    python -m converters.tflstm_convert --checkpoint_dir=demo_out/checkpoint \
        --out_dir=demo_out/models --quantize=float32,dynamic,int8 --step_batch_sizes=1,64

Held-out data: `--data=FILE.npz` with `x` float32 [n, time, depth] and optional
`y` int [n]; without it, the test split of the dataset named in spec.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from absl import app, flags

from tflstm.console import setup_logging
from tflstm.format import QUANTIZATIONS, TOLERANCES

_CHECKPOINT = flags.DEFINE_string("checkpoint_dir", None, "Checkpoint directory (spec.json + model.ckpt).", required=True)
_OUT = flags.DEFINE_string("out_dir", None, "Output folder.", required=True)
_QUANTIZE = flags.DEFINE_list("quantize", list(QUANTIZATIONS), f"Quantizations to write, of {QUANTIZATIONS}.")
_BATCHES = flags.DEFINE_list("step_batch_sizes", ["1"], "Batch sizes of the step models.")
_DATA = flags.DEFINE_string("data", None, "Held-out .npz (x, optional y); default: the spec's dataset.")
_CALIBRATION = flags.DEFINE_integer("calibration_size", 100, "Sequences used to calibrate int8.", lower_bound=1)
_INT8_IO = flags.DEFINE_bool("int8_io", False, "int8 inputs/outputs for int8 models.")

flags.register_validator("checkpoint_dir", lambda p: p is None or Path(p, "spec.json").is_file(),
                         message="--checkpoint_dir must contain spec.json")
flags.register_validator("quantize", lambda v: bool(v) and set(v) <= set(QUANTIZATIONS),
                         message=f"--quantize takes a comma-separated list of {', '.join(QUANTIZATIONS)}")
flags.register_validator("step_batch_sizes", lambda v: all(s.isdigit() and int(s) > 0 for s in v),
                         message="--step_batch_sizes must be positive integers")


def held_out(checkpoint_dir: Path, data: str | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(x, labels, calibration sequences) from --data or the spec's built-in dataset."""
    from tflstm.train import builder, digits

    if data is not None:
        with np.load(data) as npz:
            x = npz["x"].astype(np.float32)
            labels = npz["y"] if "y" in npz else None
        return x, labels, x
    spec = builder.ModelSpec.load(checkpoint_dir)
    if spec.dataset != "digits":
        raise app.UsageError(f"spec.json names no built-in dataset ({spec.dataset!r}): pass --data.")
    train, test = digits.load()
    return test.x, test.y, train.x


def main(argv: list[str]) -> int:
    del argv
    setup_logging()
    from tflstm.convert import export

    checkpoint = Path(_CHECKPOINT.value)
    x, labels, calibration = held_out(checkpoint, _DATA.value)
    reports = export.convert_and_verify(
        checkpoint, Path(_OUT.value), _QUANTIZE.value, x, labels,
        calibration[: _CALIBRATION.value], [int(b) for b in _BATCHES.value], _INT8_IO.value,
    )
    print(export.table(reports, None))
    failures = export.float32_failures(reports)
    for r in failures:
        print(f"FAIL: {r.name} max abs error {r.max_abs_error:.2e} > {TOLERANCES['float32']}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    app.run(main)
