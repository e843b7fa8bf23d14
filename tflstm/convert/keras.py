"""`from_keras`: a Keras 3 or tf-keras LSTM model -> fused, streaming `.tflite` bytes.

The weights are read eagerly from the Keras model; the network is rebuilt in a
TensorFlow graph with `TFLiteLSTMCell` layers (`keras_graph`) and converted by
`from_session`, so a Keras model gets the same fused-op check, quantization
modes, metadata, signature and state exposure as any tflstm graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from tflstm.convert.checkpoint import batches
from tflstm.convert.keras_graph import plan, rebuild
from tflstm.convert.keras_model import KerasGraph, load_model, read_graph
from tflstm.convert.quantize import RepresentativeDataset
from tflstm.convert.session import from_session

KerasCalibration = Callable[[], Iterable[Any]]
"""A callable returning an iterable of float32 sequences in Keras' layout: [time, features] or
[batch, time, features] (or a one-element list holding such an array, as TensorFlow's
converter takes)."""


def time_steps_per_invoke(graph: KerasGraph, streaming: bool, steps_per_call: int) -> int:
    """Time steps one invoke of the converted model takes.

    Streaming models take `steps_per_call`; sequence models take the Keras
    model's window (its Input's time dimension), or `steps_per_call` when the
    window is not fixed.
    """
    if not isinstance(steps_per_call, int) or steps_per_call < 1:
        raise ValueError(f"`steps_per_call` must be a positive int, got {steps_per_call!r}.")
    if streaming or graph.window is None:
        return steps_per_call
    if steps_per_call not in (1, graph.window):
        raise ValueError(
            f"A sequence model (streaming=False) takes the model's window of {graph.window} time steps; "
            f"got steps_per_call={steps_per_call}. Leave steps_per_call at 1, or use streaming=True."
        )
    return graph.window


def _calls(calibration: KerasCalibration, depth: int, time_steps: int, batch_size: int) -> RepresentativeDataset:
    """Keras-layout calibration sequences -> from_session's inputs [time_steps, batch, depth], in order."""

    def generate() -> Iterator[list[np.ndarray]]:
        for item in calibration():
            x = np.asarray(item[0] if isinstance(item, (list, tuple)) else item, dtype=np.float32)
            x = x[None] if x.ndim == 2 else x
            if x.ndim != 3 or x.shape[2] != depth or x.shape[1] < time_steps:
                raise ValueError(
                    f"`representative_dataset` must yield sequences [time, {depth}] or [batch, time, {depth}] "
                    f"with time >= {time_steps}, got {list(x.shape)}."
                )
            for batch in batches(x, batch_size):
                for start in range(0, len(batch) - time_steps + 1, time_steps):
                    yield [batch[start : start + time_steps]]

    return generate


def from_keras(
    model_or_path: Any,
    *,
    quantize: str = "float32",
    representative_dataset: KerasCalibration | None = None,
    streaming: bool = True,
    steps_per_call: int = 1,
    batch_size: int = 1,
) -> bytes:
    """Converts a Keras LSTM model into a fused-LSTM `.tflite` (one fused op per LSTM layer).

    Args:
        model_or_path: a Keras 3 or tf-keras model, or the path of a `.keras`
            file, an `.h5` file or a tf-keras SavedModel directory. Sequential
            or functional, one input [batch, time, features].
        quantize: "float32", "float16", "dynamic" or "int8". Default: "float32".
        representative_dataset: "int8" only (required there): a callable
            returning an iterable of calibration sequences in Keras' layout,
            [time, features] or [batch, time, features] float32; they are cut
            into calls and fed in order (about 100 sequences calibrate well).
            Default: None.
        streaming: True: a step model (`step` signature, every LSTM's state
            exposed as `<layer>/h`, `<layer>/c`, Keras `stateful=True`
            semantics); an LSTM with `return_sequences=False` gives its output
            at the call's last step. False: a sequence model of the model's
            window. Default: True.
        steps_per_call: time steps per call of a streaming model: 1 for a step
            model, k > 1 for a chunk model (`step(x)` with x [k, features]).
            Layers that mix time steps (Flatten, GlobalAveragePooling1D, ...)
            need k = the model's fixed window. Default: 1.
        batch_size: streams (step model) or sequences (sequence model) per
            invoke; chunk models are batch 1. Default: 1.

    Returns:
        The `.tflite` flatbuffer with tflstm metadata; its outputs are
        time-major: [steps, batch, d] per step, [1, batch, d] for one value per call.

    Raises:
        UnsupportedModelError: a layer tflstm does not convert, before any
            conversion, with why and what to do.
        ConversionError: the converted model is not what was asked for.
        ValueError: bad arguments.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
    if streaming and steps_per_call != 1 and batch_size != 1:
        raise ValueError(
            f"Chunk models (steps_per_call={steps_per_call}) are batch 1, got batch_size={batch_size}: step "
            "batched streams one time step at a time (steps_per_call=1)."
        )
    graph = read_graph(load_model(model_or_path))
    time_steps = time_steps_per_invoke(graph, streaming, steps_per_call)
    rebuilt = rebuild(plan(graph, time_steps), batch_size)
    calls = None if representative_dataset is None else _calls(
        representative_dataset, graph.depth, time_steps, batch_size
    )
    with rebuilt.sess:
        return from_session(
            rebuilt.sess, [rebuilt.x], rebuilt.outputs, quantize=quantize, representative_dataset=calls,
            streaming=streaming, steps_per_call=time_steps if streaming else 1,
        )

