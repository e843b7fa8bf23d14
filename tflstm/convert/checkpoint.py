"""Converts a `tflstm.train.builder` checkpoint into sequence and step models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tflstm.convert.session import from_session
from tflstm.normalization import apply as normalize
from tflstm.train import builder


def batches(x: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Time-major batches [time, batch_size, depth] of batch-major sequences x [n, time, depth].

    The last batch is padded with zero sequences to `batch_size`.
    """
    for start in range(0, len(x), batch_size):
        part = x[start : start + batch_size]
        if len(part) < batch_size:
            pad = np.zeros((batch_size - len(part), *part.shape[1:]), dtype=part.dtype)
            part = np.concatenate([part, pad])
        yield np.ascontiguousarray(np.swapaxes(part, 0, 1))


def convert_checkpoint(
    checkpoint_dir: str | Path,
    *,
    quantize: str = "float32",
    streaming: bool = False,
    steps_per_call: int = 1,
    batch_size: int = 1,
    calibration: np.ndarray | None = None,
    int8_io: bool = False,
) -> bytes:
    """Rebuilds the checkpoint's model for the target shape and converts it.

    Args:
        checkpoint_dir: a directory written by `builder.train` (spec.json + model.ckpt).
        quantize: see `from_session`. Default: "float32".
        streaming: a step model with its state exposed. Default: False (the
            sequence model, `spec.time_steps` long).
        steps_per_call: streaming only: time steps per call, 1 for a step model,
            k > 1 for a chunk model. Default: 1.
        batch_size: streams (step model) or sequences (sequence model) per invoke.
            Default: 1.
        calibration: "int8" only: float [n, time_steps, depth] raw sequences to
            calibrate on (normalized as the spec says, then fed step by step, in
            order, to a step model). Default: None.
        int8_io: "int8" only: int8 inputs and outputs. Default: False.

    Returns:
        The `.tflite` flatbuffer, with the spec's normalization in its metadata.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
    spec = builder.ModelSpec.load(checkpoint_dir)
    time_steps = steps_per_call if streaming else spec.time_steps
    representative = None
    if calibration is not None:
        expected = (spec.time_steps, spec.input_depth)
        if np.ndim(calibration) != 3 or np.shape(calibration)[1:] != expected:
            raise ValueError(
                f"`calibration` must be [n, {expected[0]}, {expected[1]}], got {np.shape(calibration)}."
            )
        calibration = normalize(calibration, spec.normalization)

        def representative():
            for batch in batches(calibration, batch_size):
                if streaming:
                    for t in range(0, len(batch) - time_steps + 1, time_steps):
                        yield [batch[t : t + time_steps]]
                else:
                    yield [batch]

    norm = spec.normalization
    model, sess = builder.restore(checkpoint_dir, time_steps, batch_size)
    with sess:
        return from_session(
            sess, [model.features], [model.predictions], quantize=quantize,
            representative_dataset=representative, int8_io=int8_io, streaming=streaming,
            normalization=None if norm is None else (norm["mean"], norm["std"]),
            steps_per_call=steps_per_call if streaming else 1,
        )
