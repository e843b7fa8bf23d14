"""Runs converted models on held-out sequences and compares them with TensorFlow."""

from __future__ import annotations

import dataclasses

import numpy as np

from tflstm.convert.checkpoint import batches
from tflstm.format import read_metadata
from tflstm.runtime import SequenceModel, StreamingModel


@dataclasses.dataclass(frozen=True)
class VariantReport:
    """How one `.tflite` file did against its reference (TensorFlow or Keras).

    Attributes:
        name: file name.
        kind: "sequence" or "step".
        quantization: quantization mode.
        batch_size: model batch size.
        size_bytes: file size.
        max_abs_error: max |tflite - reference| over all steps and outputs.
        accuracy: last-step classification accuracy, or None for regression.
        time_steps: time steps per invoke (1 for step models, k for chunk models).
    """

    name: str
    kind: str
    quantization: str
    batch_size: int
    size_bytes: int
    max_abs_error: float
    accuracy: float | None
    time_steps: int = 1


def run_sequence_model(model: bytes, x: np.ndarray) -> np.ndarray:
    """Sequence model outputs for x [n, time, depth] -> [n, out_time, outputs].

    `time` is a multiple of the model's window; the windows of a sequence run in
    order with the state carried between them (reset at each sequence's start).
    """
    sequence = SequenceModel(model)
    window = sequence.time_steps
    parts = []
    for batch in batches(x, sequence.batch_size):
        parts.append(np.concatenate([
            sequence.run_sequence(batch[start : start + window], reset=start == 0)
            for start in range(0, len(batch), window)
        ]))
    return np.swapaxes(np.concatenate(parts, axis=1), 0, 1)[: len(x)]


def stream_step_model(model: bytes, x: np.ndarray) -> np.ndarray:
    """Streams x [n, time, depth] through a step model -> [n, out_time, outputs].

    Each call takes the model's steps per call (1, or k for a chunk model); the
    state is reset at each sequence's start.
    """
    streaming = StreamingModel(model)
    k = streaming.metadata.time_steps
    parts = []
    for batch in batches(x, streaming.batch_size):
        streaming.reset()
        parts.append(np.concatenate([streaming.step(batch[start : start + k]) for start in range(0, len(batch), k)]))
    return np.swapaxes(np.concatenate(parts, axis=1), 0, 1)[: len(x)]


def report(
    name: str, model: bytes, x: np.ndarray, reference: np.ndarray, labels: np.ndarray | None
) -> VariantReport:
    """Compares one model with the `reference` outputs [n, out_time, outputs] (TensorFlow's or Keras') on x."""
    meta = read_metadata(model)
    run = stream_step_model if meta.kind == "step" else run_sequence_model
    got = run(model, x)
    if got.shape != reference.shape:
        raise ValueError(f"{name} gave outputs of shape {list(got.shape)}; the reference has {list(reference.shape)}.")
    accuracy = None if labels is None else float(np.mean(got[:, -1].argmax(-1) == labels))
    return VariantReport(
        name=name, kind=meta.kind, quantization=meta.quantization, batch_size=meta.batch_size,
        time_steps=meta.time_steps, size_bytes=len(model), max_abs_error=float(np.abs(got - reference).max()),
        accuracy=accuracy,
    )
