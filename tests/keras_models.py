"""Keras models the Keras tests convert, for Keras 3 (`keras`) and tf-keras (`tf_keras`) alike.

Every builder takes the Keras module and the input's time dimension: the tests
train a model with a fixed window and compute Keras references with the same
architecture built for any length (`time_steps=None`), its weights copied.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

WINDOW, DEPTH = 7, 3


def stream_classifier(K: ModuleType, time_steps: int | None = WINDOW) -> Any:
    """The issue's stream classifier: 7 samples x 3 features -> the probability after the last one."""
    L = K.layers
    return K.Sequential([
        K.Input(shape=(time_steps, DEPTH)),
        L.LSTM(32, return_sequences=True), L.LeakyReLU(), L.Dropout(0.2),
        L.LSTM(16), L.Dropout(0.2), L.LeakyReLU(),
        L.Dense(1, activation="sigmoid"),
    ])


def two_branches(K: ModuleType, time_steps: int | None = WINDOW) -> Any:
    """Two LSTM branches merged per step (Add, Concatenate), normalization, class probabilities per step."""
    L = K.layers
    x = K.Input(shape=(time_steps, DEPTH))
    a = L.LSTM(16, return_sequences=True)(x)
    a = L.LayerNormalization()(a)
    b = L.LSTM(8, return_sequences=True, unit_forget_bias=False)(x)
    b = L.TimeDistributed(L.Dense(16, activation="tanh"))(b)
    merged = L.Concatenate()([L.Add()([a, b]), L.ELU()(b)])
    merged = L.ReLU()(L.BatchNormalization()(merged))
    top = L.LSTM(12, return_sequences=True)(merged)
    return K.Model(x, L.Dense(2, activation="softmax")(top))


def flatten_window(K: ModuleType, stateful: bool = False) -> Any:
    """The stream classifier's original form: Flatten -> Dense over the whole window."""
    L = K.layers
    x = K.Input(batch_shape=(1, WINDOW, DEPTH)) if stateful else K.Input(shape=(WINDOW, DEPTH))
    h = L.LSTM(32, return_sequences=True, stateful=stateful)(x)
    h = L.LeakyReLU()(h)
    h = L.LSTM(16, return_sequences=True, stateful=stateful)(h)
    return K.Model(x, L.Dense(1, activation="sigmoid")(L.Flatten()(h)))


def reset_states(model: Any) -> None:
    """Zeroes the state of every stateful RNN layer (Keras 3 models have no `reset_states`)."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_states()


def synthetic(n: int, time_steps: int, seed: int) -> np.ndarray:
    """float32 [n, time_steps, DEPTH] standard-normal sequences."""
    return np.random.default_rng(seed).normal(size=(n, time_steps, DEPTH)).astype(np.float32)


def train(K: ModuleType, model: Any, per_step: bool, seed: int = 0) -> Any:
    """16 optimizer steps on synthetic windows (labels: sign of the running sum of feature 0)."""
    x = synthetic(64, WINDOW, seed)
    running = np.cumsum(x[:, :, 0], axis=1) > 0
    optimizer = K.optimizers.Adam(learning_rate=0.02)
    if per_step:
        model.compile(optimizer, "sparse_categorical_crossentropy")
        model.fit(x, running.astype(np.int32), epochs=4, batch_size=16, verbose=0)
    else:
        model.compile(optimizer, "binary_crossentropy")
        model.fit(x, running[:, -1].astype(np.float32), epochs=4, batch_size=16, verbose=0)
    return model


def any_length_copy(K: ModuleType, builder: Callable[..., Any], trained: Any) -> Any:
    """The same architecture for inputs of any length, with `trained`'s weights."""
    copy = builder(K, None)
    copy.set_weights(trained.get_weights())
    return copy


def outputs_at_every_step(model: Any, x: np.ndarray) -> np.ndarray:
    """Keras' output after each step t, from the zero state: model(x[:, :t + 1]) -> [n, time, outputs].

    The definition of what a streaming model must output at step t, also for
    models whose last LSTM has return_sequences=False.
    """
    steps = []
    for t in range(x.shape[1]):
        y = np.asarray(model(x[:, : t + 1], training=False))
        steps.append(y[:, -1] if y.ndim == 3 else y)
    return np.stack(steps, axis=1)
