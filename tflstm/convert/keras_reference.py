"""Keras' own outputs for held-out sequences, fed the way a converted model is fed.

A converted model takes k time steps per call and carries its state between
calls: Keras `stateful=True` semantics. The reference is the Keras model itself,
cloned with stateful LSTMs and an input of [n, k, features] (the weights
copied), fed the sequences k steps at a time with `predict_on_batch`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tflstm.convert.keras_model import keras_module


def stateful_twin(model: Any, batch_size: int, steps_per_call: int) -> Any:
    """A copy of `model` with `stateful=True` LSTMs taking [batch_size, steps_per_call, features]."""
    keras = keras_module(model)

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if type(layer).__name__ == "LSTM":
            config["stateful"] = True
        return type(layer).from_config(config)

    depth = model.inputs[0].shape[-1]
    twin = keras.models.clone_model(
        model, input_tensors=keras.Input(batch_shape=(batch_size, steps_per_call, depth)), clone_function=clone,
    )
    twin.set_weights(model.get_weights())
    return twin


def keras_outputs(model: Any, x: np.ndarray, steps_per_call: int) -> np.ndarray:
    """Keras' outputs for x fed `steps_per_call` steps per call, the state carried within each sequence.

    Args:
        model: a single-output Keras model.
        x: float32 [n, time, features], time a multiple of `steps_per_call`.
        steps_per_call: time steps per call.

    Returns:
        float32 [n, out_time, outputs]: per-step outputs give steps_per_call rows
        per call, outputs of one value per call (return_sequences=False,
        Flatten -> Dense, ...) one row per call; the layout of
        `tflstm.convert.verify`'s runs of the converted model.
    """
    if x.ndim != 3 or x.shape[1] % steps_per_call:
        raise ValueError(
            f"`x` must be [n, time, features] with time a multiple of {steps_per_call}, got {list(x.shape)}."
        )
    if len(model.outputs) != 1:
        raise ValueError(f"Verification compares one output; model {model.name!r} has {len(model.outputs)}.")
    twin = stateful_twin(model, len(x), steps_per_call)
    parts = []
    for start in range(0, x.shape[1], steps_per_call):
        y = np.asarray(twin.predict_on_batch(x[:, start : start + steps_per_call]), np.float32)
        parts.append(y if y.ndim == 3 else y[:, None])
    return np.concatenate(parts, axis=1)
