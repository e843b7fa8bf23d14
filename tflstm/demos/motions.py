"""The sensor demo: smartwatch motion recordings streamed sample by sample, as a device would.

Trains 6 -> LSTM 32 -> LSTM 32 -> 4 activities on BasicMotions (raw 3-axis
accelerometer and gyroscope at 10 Hz; the training recordings' mean and std per
channel become the model's normalization; the recordings are also fed rolled in
time, so the model learns to recognize an activity wherever a stream starts),
converts it to every quantization,
then feeds each test recording to each step model one sample at a time from the
zero state, timing every step. Prints the conversion table, then per model the
accuracy after the last sample, the step latency and how many samples into a
recording each activity is recognized (the prediction becomes the true activity
and stays it), and writes `probabilities.png`: class probabilities over time for
one test recording of each activity.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tflstm.console import epoch_logger, log
from tflstm.convert import export
from tflstm.convert.verify import VariantReport
from tflstm.demos import plot, recognition
from tflstm.format import QUANTIZATIONS
from tflstm.runtime import StreamingModel
from tflstm.train import builder, motions
from tflstm.train.data import CALIBRATION_SIZE

PLOT_FILE = "probabilities.png"


def run(
    out: Path, epochs: int = 12, seed: int = 0, units: tuple[int, ...] = (32, 32)
) -> tuple[list[VariantReport], dict[str, recognition.Streamed]]:
    """Writes `out/checkpoint`, `out/models` and `out/probabilities.png`, prints progress and
    tables; returns the conversion reports and what each step model gave on the test
    recordings, by quantization."""
    train, test = motions.load()
    classes = motions.classes()
    log.info(
        "BasicMotions (smartwatch, from the aeon wheel): %d training and %d test recordings, %d samples of "
        "%d channels at %d Hz; activities %s", len(train.x), len(test.x), train.x.shape[1], train.x.shape[2],
        motions.SAMPLE_RATE_HZ, ", ".join(classes),
    )
    layers = " -> ".join(f"LSTM {u}" for u in units)
    log.info("training 6 -> %s -> 4 for %d epochs on the recordings and %d time-rolled copies (loss on every "
             "sample)", layers, epochs, motions.ROLLED_COPIES)
    checkpoint = motions.train(
        out / "checkpoint", train, epochs, seed, units,
        on_epoch=epoch_logger(epochs, "train accuracy", every=max(1, epochs // 5)),
    )
    reference = builder.predict(checkpoint, test.x)
    tf_accuracy = float(np.mean(reference[:, -1].argmax(-1) == test.y))
    log.info("TensorFlow test accuracy %.4f; converting", tf_accuracy)
    reports = export.convert_and_verify(
        checkpoint, out / "models", QUANTIZATIONS, test.x, test.y, train.x[:CALIBRATION_SIZE]
    )
    print()
    print(export.table(reports, tf_accuracy))
    print()
    log.info("streaming the %d test recordings sample by sample through each step model", len(test.x))
    streamed = {
        quantize: recognition.stream(StreamingModel(out / "models" / export.model_file_name("step", quantize, 1)), test.x)
        for quantize in QUANTIZATIONS
    }
    print()
    print(recognition.table(streamed, test.y, classes, motions.SAMPLE_RATE_HZ))
    print()
    picks = [int(np.flatnonzero(test.y == label)[0]) for label in range(len(classes))]
    path = plot.probabilities(
        out / PLOT_FILE, streamed["float32"].outputs[picks], test.y[picks], classes, motions.SAMPLE_RATE_HZ,
        "BasicMotions test recordings streamed through step_float32.tflite",
    )
    log.info("wrote %s", path)
    return reports, streamed
