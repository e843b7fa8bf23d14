"""Keras models (Keras 3 or tf-keras) of a weights dict, batch 1.

Every builder takes the Keras module to build with (`keras` 3 or `tf_keras`),
so both APIs share one code path; they differ only in what the peers do with
the model. Importing this module imports no Keras or TensorFlow.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from benchmarks.peers.weights import Weights, dims, keras_lstm_weights

STATE_KINDS = ("h", "c")


def state_name(layer: int, kind: str) -> str:
    """Name of a state input (`h_0`, `c_0`, ...); the output is `new_<name>`."""
    return f"{kind}_{layer}"


def _lstm(keras: ModuleType, units: int, k: int, **kwargs: Any) -> Any:
    return keras.layers.LSTM(units, name=f"lstm_{k}", **kwargs)


def _head(keras: ModuleType, weights: Weights) -> Any:
    return keras.layers.Dense(dims(weights).outputs, activation=weights["activation"], name="head")


def load_weights(model: Any, weights: Weights) -> Any:
    """Sets the weights of a model built here (layers `lstm_<k>` and `head`); returns it."""
    for k, layer in enumerate(weights["layers"]):
        model.get_layer(f"lstm_{k}").set_weights(keras_lstm_weights(layer))
    model.get_layer("head").set_weights([weights["head"]["kernel"], weights["head"]["bias"]])
    return model


def stateful_model(keras: ModuleType, weights: Weights) -> Any:
    """`stateful=True` LSTM layers, input [1, 1, depth] -> head output [1, 1, outputs]."""
    d = dims(weights)
    x = keras.Input(batch_shape=(1, 1, d.depth), name="x")
    y = x
    for k, units in enumerate(d.units):
        y = _lstm(keras, units, k, stateful=True, return_sequences=True)(y)
    y = _head(keras, weights)(y)
    return load_weights(keras.Model(x, y), weights)


def state_io_model(keras: ModuleType, weights: Weights) -> Any:
    """One step with the state as model I/O (what people convert to stream with TFLite).

    Inputs `x` [1, 1, depth] and, per layer k, `h_k`, `c_k` [1, units]; outputs
    the head [1, 1, outputs] (`head`) and the new states `new_h_k`, `new_c_k`.
    """
    d = dims(weights)
    x = keras.Input(batch_shape=(1, 1, d.depth), name="x")
    inputs, state_outputs = [x], []
    y = x
    for k, units in enumerate(d.units):
        h0, c0 = (keras.Input(batch_shape=(1, units), name=state_name(k, s)) for s in STATE_KINDS)
        inputs += [h0, c0]
        y, h, c = _lstm(keras, units, k, return_sequences=True, return_state=True)(
            y, initial_state=[h0, c0]
        )
        # Named identities: the converted signature then names the state outputs.
        for kind, tensor in zip(STATE_KINDS, (h, c)):
            state_outputs.append(keras.layers.Identity(name=f"new_{state_name(k, kind)}")(tensor))
    y = _head(keras, weights)(y)
    return load_weights(keras.Model(inputs, [y, *state_outputs]), weights)


def window_model(keras: ModuleType, weights: Weights, window: int) -> Any:
    """A plain sequence model: input [1, window, depth] -> head output at the last step [1, outputs]."""
    d = dims(weights)
    x = keras.Input(batch_shape=(1, window, d.depth), name="x")
    y = x
    for k, units in enumerate(d.units):
        y = _lstm(keras, units, k, return_sequences=k + 1 < len(d.units))(y)
    y = _head(keras, weights)(y)
    return load_weights(keras.Model(x, y), weights)
