"""Writes the Android assets: the digits demo's step models, manifest.json with a TensorFlow check.

Reuses the digits checkpoint `make demo` trained (--checkpoint_dir, default
demo_out/digits/checkpoint) and trains one only when it is missing; converts
float32, dynamic-range and int8 step models (batch 1), and writes a manifest
with, per model: file, sha256, size, the `step` signature, how to reset a stream
and the model's tflstm metadata (`tflstm.format.ModelMetadata`, with the input
normalization), plus a few digits (raw pixels) and TensorFlow's outputs for them
so a test can check every asset.

Writes into build/android_assets by default; the committed android_assets/ is
refreshed only when asked (`make assets REFRESH=1`).

Example:

    python -m converters.make_assets --out_dir=build/android_assets
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from absl import flags

from tflstm import __version__
from tflstm.cli import absl_app
from tflstm.console import UserError, log
from tflstm.format import STEP_SIGNATURE, read_metadata

_OUT = flags.DEFINE_string("out_dir", "build/android_assets", "Output folder (android_assets to refresh the committed one).")
_CHECKPOINT = flags.DEFINE_string("checkpoint_dir", "demo_out/digits/checkpoint",
                                  "Trained digits checkpoint to reuse; trained anew when it does not exist.")
_EPOCHS = flags.DEFINE_integer("epochs", 15, "Training epochs when there is no checkpoint.", lower_bound=1)

flags.register_validator("out_dir", lambda p: not Path(p).exists() or Path(p).is_dir(),
                         message="--out_dir must be a folder, not a file")

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


def checkpoint_to_reuse(path: Path) -> Path | None:
    """`path` if it holds a trained digits checkpoint, None if it does not exist; UserError otherwise."""
    from tflstm.train.spec import load_checkpoint_spec

    if not path.exists():
        return None
    dataset = load_checkpoint_spec(path).dataset
    if dataset != "digits":
        raise UserError(f"--checkpoint_dir {path} holds a model trained on {dataset!r}, not the digits.")
    return path


def main(argv: list[str]) -> None:
    del argv
    import tensorflow as tf

    from tflstm.convert.checkpoint import convert_checkpoint
    from tflstm.train import builder, digits

    out = Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    train, test = digits.load()
    reuse = checkpoint_to_reuse(Path(_CHECKPOINT.value))
    with tempfile.TemporaryDirectory() as scratch:
        if reuse is None:
            log.info("no checkpoint in %s: training the digits model for %d epochs", _CHECKPOINT.value, _EPOCHS.value)
            checkpoint = digits.train(Path(scratch) / "checkpoint", train, _EPOCHS.value)
        else:
            log.info("reusing the digits checkpoint %s", reuse)
            checkpoint = reuse
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
            "task": "scikit-learn digits: an 8x8 image read row by row, 8 time steps of 8 features; "
                    "the features are the raw pixels 0..16 normalized as each model's metadata says "
                    "((x - mean) / std = pixel / 16); the output after the 8th row is the class probabilities",
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
    absl_app.run(main)
