"""Writes android_assets/: the demo's step models, manifest.json with a TensorFlow check.

Trains the digits model (as `make demo` does) unless --checkpoint_dir is given,
converts float32, dynamic-range and int8 step models (batch 1), and writes a
manifest with, per model: file, sha256, size, the `step` signature, how to reset
a stream and the model's tflstm metadata (`tflstm.format.ModelMetadata`), plus a
few digits and TensorFlow's outputs for them so a test can check every asset.

Example:

    python -m converters.make_assets --out_dir=android_assets
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from absl import app, flags

from tflstm import __version__
from tflstm.console import log, setup_logging
from tflstm.format import STEP_SIGNATURE, read_metadata

_OUT = flags.DEFINE_string("out_dir", "android_assets", "Output folder.")
_CHECKPOINT = flags.DEFINE_string("checkpoint_dir", None, "Trained digits checkpoint; default: train one.")
_EPOCHS = flags.DEFINE_integer("epochs", 15, "Training epochs when no checkpoint is given.", lower_bound=1)

MANIFEST_VERSION = 2
"""Version of manifest.json's layout (android_assets/README.md describes it)."""
QUANTIZATIONS = ("float32", "dynamic", "int8")
CHECK_SEQUENCES = 4
RESET = (
    "Write each state input's zero (0.0 for float32 states, the tensor's zero_point for "
    "int8/int16 states) before the first step of a stream; or, if the app never passes the "
    "state inputs, call Interpreter.resetVariableTensors()."
)


def manifest_entry(name: str, model: bytes) -> dict[str, Any]:
    """The manifest record of one step model."""
    return {
        "file": name,
        "sha256": hashlib.sha256(model).hexdigest(),
        "size_bytes": len(model),
        "signature": STEP_SIGNATURE,
        "reset": RESET,
        "metadata": read_metadata(model).to_dict(),
    }


def main(argv: list[str]) -> None:
    del argv
    setup_logging()
    import tensorflow as tf

    from tflstm.convert.checkpoint import convert_checkpoint
    from tflstm.train import builder, digits

    out = Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    train, test = digits.load()
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = Path(_CHECKPOINT.value) if _CHECKPOINT.value else digits.train(
            Path(scratch) / "checkpoint", train, _EPOCHS.value
        )
        check_x = test.x[:CHECK_SEQUENCES]
        entries = []
        for quantize in QUANTIZATIONS:
            name = f"digits_step_{quantize}.tflite"
            model = convert_checkpoint(
                checkpoint, quantize=quantize, streaming=True,
                calibration=train.x[:100] if quantize == "int8" else None,
            )
            (out / name).write_bytes(model)
            entries.append(manifest_entry(name, model))
            log.info("wrote %s (%d bytes)", out / name, len(model))
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "generated_by": {"tflstm": __version__, "tensorflow": tf.__version__},
            "task": "scikit-learn digits: an 8x8 image read row by row, 8 time steps of 8 features "
                    "(pixel / 16); the output after the 8th row is the class probabilities",
            "models": entries,
            "check": {
                "x": check_x.round(6).tolist(),
                "labels": test.y[:CHECK_SEQUENCES].tolist(),
                "tensorflow_outputs": builder.predict(checkpoint, check_x).round(6).tolist(),
            },
        }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    log.info("wrote %s", out / "manifest.json")


if __name__ == "__main__":
    app.run(main)
