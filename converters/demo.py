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

from tflstm.console import log, setup_logging
from tflstm.format import QUANTIZATIONS, TOLERANCES

_OUT = flags.DEFINE_string("out_dir", "demo_out", "Output folder (checkpoint/, models/).")
_EPOCHS = flags.DEFINE_integer("epochs", 15, "Training epochs.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialization, shuffling and the split.")


def main(argv: list[str]) -> None:
    del argv
    setup_logging()
    from tflstm.convert import export
    from tflstm.train import builder, digits

    started = time.monotonic()
    out = Path(_OUT.value)
    train, test = digits.load(seed=_SEED.value)
    log.info("%d digits held out", len(test.x))
    log.info("training 8 -> LSTM 128 -> LSTM 64 -> 10 on %d digits", len(train.x))
    checkpoint = digits.train(
        out / "checkpoint", train, _EPOCHS.value, _SEED.value,
        on_epoch=lambda e, loss, acc: log.info("epoch %2d  loss %.4f  train accuracy %.4f", e, loss, acc),
    )
    reference = builder.predict(checkpoint, test.x)
    tf_accuracy = float(np.mean(reference[:, -1].argmax(-1) == test.y))
    log.info("TensorFlow test accuracy %.4f; converting and streaming the test set row by row", tf_accuracy)
    reports = export.convert_and_verify(
        checkpoint, out / "models", QUANTIZATIONS, test.x, test.y, train.x[:100]
    )
    print()
    print(export.table(reports, tf_accuracy))
    print(f"\n{len(reports)} models in {out / 'models'}; {time.monotonic() - started:.0f} s in all")
    failures = export.float32_failures(reports)
    if failures:
        raise SystemExit(f"float32 error above {TOLERANCES['float32']}: {[r.name for r in failures]}")


if __name__ == "__main__":
    app.run(main)
