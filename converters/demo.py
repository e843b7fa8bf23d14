"""The end-to-end demo behind `make demo`.

Trains a 2-layer LSTM on the digits data (rows as 8 time steps of 8 features),
converts it to float32, float16, dynamic-range and full-int8 `.tflite` files,
streams the test set one row at a time through each step model, and prints a
table of file size, accuracy and max abs error against TensorFlow.

Example:

    python -m converters.demo --out_dir=demo_out --epochs=15
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from absl import app, flags

from converters import pipeline
from tflstm.format import QUANTIZATIONS

_OUT = flags.DEFINE_string("out_dir", "demo_out", "Output folder (checkpoint/, models/).")
_EPOCHS = flags.DEFINE_integer("epochs", 15, "Training epochs.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialization, shuffling and the split.")

log = pipeline.log


def main(argv: list[str]) -> None:
    del argv
    pipeline.setup_logging()
    from tflstm.train import builder, digits

    started = time.monotonic()
    out = Path(_OUT.value)
    train, test = digits.load(seed=_SEED.value)
    log.info("%d digits held out", len(test.x))
    checkpoint = pipeline.train_digits(out / "checkpoint", train, _EPOCHS.value, _SEED.value)
    reference = builder.predict(checkpoint, test.x)
    tf_accuracy = float(np.mean(reference[:, -1].argmax(-1) == test.y))
    log.info("TensorFlow test accuracy %.4f; converting and streaming the test set row by row", tf_accuracy)
    reports = pipeline.convert_and_verify(
        checkpoint, out / "models", QUANTIZATIONS, test.x, test.y, train.x[:100]
    )
    print()
    print(pipeline.table(reports, tf_accuracy))
    print(f"\n{len(reports)} models in {out / 'models'}; {time.monotonic() - started:.0f} s in all")
    failures = pipeline.float32_failures(reports)
    if failures:
        raise SystemExit(f"float32 error above {pipeline.FLOAT32_MAX_ERROR}: {[r.name for r in failures]}")


if __name__ == "__main__":
    app.run(main)
