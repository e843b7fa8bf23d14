"""Keras `stateful=True` LSTM models stepped one sample per call (Keras 3 and tf-keras).

Both peers keep the state in the layers' state variables (batch 1) and call
the model either through `predict_on_batch(x)` or directly as
`model(x, training=False)`; `reset()` calls `reset_states()` on the LSTM layers.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from benchmarks.peers import _deps, keras_models
from benchmarks.peers.weights import Weights, dims

CALLS = ("predict_on_batch", "call")
"""How a step calls the model: `model.predict_on_batch(x)` or `model(x, training=False)`."""


class KerasStatefulStep:
    """Steps a stateful Keras model built by `keras_models.stateful_model`.

    Args:
        model: the model, input [1, 1, depth] -> [1, 1, outputs].
        family: name prefix, e.g. "keras3_stateful".
        call: one of `CALLS`.
    """

    def __init__(self, model: Any, family: str, call: str) -> None:
        if call not in CALLS:
            raise ValueError(f"`call` must be one of {CALLS}, got {call!r}.")
        self.model = model
        self.call = call
        self.name = f"{family}_{call}"
        self._lstms = [layer for layer in model.layers if layer.name.startswith("lstm_")]
        self._x_shape = (1, 1, int(model.inputs[0].shape[-1]))
        self._predict = model.predict_on_batch if call == "predict_on_batch" else None

    def reset(self) -> None:
        """Zeroes the LSTM layers' state variables."""
        for layer in self._lstms:
            layer.reset_states()

    def step(self, x: np.ndarray) -> np.ndarray:
        """x float32 [depth] -> head output float32 [outputs]."""
        x = x.reshape(self._x_shape)
        if self._predict is not None:
            return np.asarray(self._predict(x)).reshape(-1)
        return self.model(x, training=False).numpy().reshape(-1)


def _make(keras: ModuleType, weights: Weights, family: str, call: str) -> KerasStatefulStep:
    dims(weights)
    return KerasStatefulStep(keras_models.stateful_model(keras, weights), family, call)


def make_keras3_stateful(weights: Weights, *, threads: int = 1, call: str = "predict_on_batch") -> KerasStatefulStep:
    """Keras 3 (TF 2.21's `tf.keras`) stateful model; `call` is one of `CALLS`."""
    family = "keras3_stateful"
    _deps.tensorflow(family, threads)
    keras = _deps.require("keras", family)
    if int(keras.__version__.split(".")[0]) < 3:
        raise ImportError(f"{family} needs Keras 3, found keras {keras.__version__}: {_deps.PIP['keras']}")
    return _make(keras, weights, family, call)


def make_tfkeras_stateful(weights: Weights, *, threads: int = 1, call: str = "predict_on_batch") -> KerasStatefulStep:
    """tf-keras (legacy Keras 2, `import tf_keras`) stateful model; `call` is one of `CALLS`."""
    family = "tfkeras_stateful"
    _deps.tensorflow(family, threads)
    return _make(_deps.require("tf_keras", family), weights, family, call)
