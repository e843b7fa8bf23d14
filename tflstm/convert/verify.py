"""Runs converted models on held-out sequences and compares them with TensorFlow."""

from __future__ import annotations

import dataclasses

import numpy as np

from tflstm.convert.checkpoint import batches
from tflstm.format import read_metadata
from tflstm.normalization import apply as normalize
from tflstm.runtime import StreamingModel
from tflstm.runtime.backend import make_engine


@dataclasses.dataclass(frozen=True)
class VariantReport:
    """How one `.tflite` file did against TensorFlow.

    Attributes:
        name: file name.
        kind: "sequence" or "step".
        quantization: quantization mode.
        batch_size: model batch size.
        size_bytes: file size.
        max_abs_error: max |tflite - tensorflow| over all steps and outputs.
        accuracy: last-step classification accuracy, or None for regression.
    """

    name: str
    kind: str
    quantization: str
    batch_size: int
    size_bytes: int
    max_abs_error: float
    accuracy: float | None


def run_sequence_model(model: bytes, x: np.ndarray) -> np.ndarray:
    """Sequence model outputs for raw x [n, time, depth] -> [n, time, outputs].

    x is normalized as the metadata says. The fused ops keep their state between
    invokes, so it is reset before each batch.
    """
    meta = read_metadata(model)
    engine = make_engine(model)
    (feature,), (output,) = meta.inputs, meta.outputs
    parts = []
    for batch in batches(normalize(x, meta.normalization), meta.batch_size):
        engine.reset_variables()
        engine.set_tensor(feature.tensor_index, batch)
        engine.invoke()
        parts.append(engine.get_tensor(output.tensor_index))
    return np.swapaxes(np.concatenate(parts, axis=1), 0, 1)[: len(x)]


def stream_step_model(model: bytes, x: np.ndarray) -> np.ndarray:
    """Streams raw x [n, time, depth] one row at a time through a step model -> [n, time, outputs]."""
    streaming = StreamingModel(model)
    parts = []
    for batch in batches(x, streaming.batch_size):
        streaming.reset()
        parts.append(np.stack([streaming.step(row) for row in batch]))
    return np.swapaxes(np.concatenate(parts, axis=1), 0, 1)[: len(x)]


def report(
    name: str, model: bytes, x: np.ndarray, reference: np.ndarray, labels: np.ndarray | None
) -> VariantReport:
    """Compares one model with the TensorFlow `reference` [n, time, outputs] on x."""
    meta = read_metadata(model)
    run = stream_step_model if meta.kind == "step" else run_sequence_model
    got = run(model, x)
    accuracy = None if labels is None else float(np.mean(got[:, -1].argmax(-1) == labels))
    return VariantReport(
        name=name, kind=meta.kind, quantization=meta.quantization, batch_size=meta.batch_size,
        size_bytes=len(model), max_abs_error=float(np.abs(got - reference).max()), accuracy=accuracy,
    )
