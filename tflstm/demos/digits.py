"""The digits demo: train on scikit-learn's 8x8 digits, convert to every quantization, stream.

Trains 8 -> LSTM 128 -> LSTM 64 -> 10 (each image read as 8 time steps of 8 raw
pixels 0..16; the model's normalization divides by 16), converts it to
float32, float16, dynamic-range and full-int8 `.tflite` files (sequence model,
step model, and a step model of batch 64 for `step_many`), streams the test set
one row at a time through each step model, and prints a table of file size,
accuracy and max abs error against TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tflstm.console import epoch_logger, log
from tflstm.convert import export
from tflstm.convert.verify import VariantReport
from tflstm.format import QUANTIZATIONS
from tflstm.train import builder, digits
from tflstm.train.data import CALIBRATION_SIZE

STEP_BATCH_SIZES = (1, 64)


def run(out: Path, epochs: int = 15, seed: int = 0) -> list[VariantReport]:
    """Writes `out/checkpoint` and `out/models`, prints progress and the table; returns the reports."""
    train, test = digits.load(seed=seed)
    log.info("digits: %d training and %d held-out images, each 8 rows of 8 pixels (0..16)", len(train.x), len(test.x))
    log.info("training 8 -> LSTM 128 -> LSTM 64 -> 10 for %d epochs", epochs)
    checkpoint = digits.train(
        out / "checkpoint", train, epochs, seed, on_epoch=epoch_logger(epochs, "train accuracy", every=max(1, epochs // 5))
    )
    reference = builder.predict(checkpoint, test.x)
    tf_accuracy = float(np.mean(reference[:, -1].argmax(-1) == test.y))
    log.info("TensorFlow test accuracy %.4f; converting and streaming the test set row by row", tf_accuracy)
    reports = export.convert_and_verify(
        checkpoint, out / "models", QUANTIZATIONS, test.x, test.y, train.x[:CALIBRATION_SIZE], STEP_BATCH_SIZES
    )
    print()
    print(export.table(reports, tf_accuracy))
    print()
    return reports
