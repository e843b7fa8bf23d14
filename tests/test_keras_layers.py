"""The Keras layer mapping: the LSTM gate order, every supported layer against Keras (Keras 3 and tf-keras)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tflstm.convert import from_keras
from tflstm.convert.keras_layers import lstm_weights
from tflstm.format import TOLERANCES
from tflstm.runtime import SequenceModel, StreamingModel

FLOAT32_TOL = TOLERANCES["float32"]
STEPS, FEATURES = 12, 4


@pytest.fixture(scope="module", params=["keras", "tf_keras"])
def K(request):
    module = importlib.import_module(request.param)
    module.utils.set_random_seed(0)
    return module


def randomize(model, seed: int = 0) -> None:
    """Every weight uniform(-0.6, 0.6); BatchNormalization variances in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = [rng.uniform(-0.6, 0.6, w.shape).astype(np.float32) for w in layer.get_weights()]
        if type(layer).__name__ == "BatchNormalization":
            weights[-1] = np.abs(weights[-1]) + 0.5
        layer.set_weights(weights)


def sequences(n: int = 2, steps: int = STEPS, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, steps, FEATURES)).astype(np.float32)


def stream_rows(converted: bytes, x: np.ndarray) -> np.ndarray:
    """Each sequence of x streamed one row at a time from the zero state -> [n, steps, outputs]."""
    model = StreamingModel(converted)
    results = []
    for sequence in x:
        model.reset()
        results.append(np.stack([model.step(row) for row in sequence]))
    return np.stack(results)


def test_lstm_weights_split_keras_gate_blocks_per_gate_and_transpose_them():
    depth, units = 3, 2
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(depth, 4 * units)).astype(np.float32)
    recurrent = rng.normal(size=(units, 4 * units)).astype(np.float32)
    bias = np.arange(4 * units, dtype=np.float32)
    weights = lstm_weights(kernel, recurrent, bias)
    # Keras packs the gates i, f, c, o along the last axis; the fused op takes [units, depth] per gate.
    for k, gate in enumerate(("input", "forget", "cell", "output")):
        block = slice(k * units, (k + 1) * units)
        np.testing.assert_array_equal(weights[f"input_to_{gate}_w"], kernel[:, block].T)
        np.testing.assert_array_equal(weights[f"recurrent_to_{gate}_w"], recurrent[:, block].T)
        np.testing.assert_array_equal(weights[f"{gate}_bias"], bias[block])
    np.testing.assert_array_equal(lstm_weights(kernel, recurrent, None)["forget_bias"], np.zeros(units))


def _single_lstm(K, time_steps: int | None):
    return K.Sequential([K.Input(shape=(time_steps, FEATURES)), K.layers.LSTM(6, return_sequences=True)])


def _tf1_gate_order(weights: list[np.ndarray]) -> list[np.ndarray]:
    """The blocks permuted as a converter assuming TF1's i, c, f, o order would read them."""
    def permute(w):
        i, f, c, o = np.split(w, 4, axis=-1)
        return np.concatenate([i, c, f, o], axis=-1)
    return [permute(w) for w in weights]


def _untransposed_recurrent(weights: list[np.ndarray]) -> list[np.ndarray]:
    kernel, recurrent, bias = weights
    return [kernel, np.concatenate([b.T for b in np.split(recurrent, 4, axis=-1)], axis=-1), bias]


def test_gate_order_matches_keras_and_the_known_traps_would_not(K):
    model = _single_lstm(K, STEPS)
    randomize(model)
    x = sequences(1)
    expected = np.asarray(model(x))[0]
    converted = SequenceModel(from_keras(model, streaming=False))
    np.testing.assert_allclose(converted.run_sequence(x[0]), expected, atol=FLOAT32_TOL, rtol=0)
    # The same check catches a wrong gate order or a missing transpose by orders of magnitude.
    for trap in (_tf1_gate_order, _untransposed_recurrent):
        trapped = _single_lstm(K, STEPS)
        trapped.set_weights(trap(model.get_weights()))
        error = np.abs(SequenceModel(from_keras(trapped, streaming=False)).run_sequence(x[0]) - expected).max()
        assert error > 1000 * FLOAT32_TOL, trap.__name__


def per_step_zoo(K):
    """Every supported per-step layer and activation of this Keras, in one stack."""
    L = K.layers
    activations = ["linear", "relu", "sigmoid", "tanh", "elu", "swish"]
    if K.__name__ == "keras":
        activations += ["relu6", "leaky_relu", "silu"]
    layers = [
        L.LSTM(8, return_sequences=True, use_bias=False), L.Dense(6, activation="relu"),
        L.BatchNormalization(), L.LayerNormalization(), L.ELU(alpha=0.5), L.Activation("tanh"),
        L.ReLU(max_value=0.5, negative_slope=0.1), L.LeakyReLU(), L.GaussianNoise(0.1), L.GaussianDropout(0.1),
        L.AlphaDropout(0.1), L.SpatialDropout1D(0.1), L.Dropout(0.1), L.ActivityRegularization(0.1),
        L.TimeDistributed(L.Dense(6)), L.LSTM(6, return_sequences=True),
        *[L.Dense(6, activation=name) for name in activations],
        L.Softmax(), L.LayerNormalization(center=False, scale=False), L.BatchNormalization(center=False, scale=False),
        L.Dense(3),
    ]
    return K.Sequential([K.Input(shape=(None, FEATURES)), *layers])


def merge_zoo(K):
    """Every merge layer, of per-step branches."""
    L = K.layers
    x = K.Input(shape=(None, FEATURES))
    a = L.LSTM(6, return_sequences=True)(x)
    b = L.Dense(6, activation="tanh")(L.LSTM(5, return_sequences=True)(x))
    merged = [L.Add()([a, b]), L.Subtract()([a, b]), L.Multiply()([a, b]), L.Average()([a, b]),
              L.Maximum()([a, b]), L.Minimum()([a, b])]
    both = L.Concatenate(axis=2)([L.Concatenate()(merged), a])
    return K.Model(x, L.Dense(2)(L.LSTM(4, return_sequences=True)(both)))


@pytest.mark.parametrize("zoo", [per_step_zoo, merge_zoo])
def test_supported_per_step_layers_stream_like_keras(K, zoo):
    model = zoo(K)
    randomize(model)
    x = sequences()
    expected = np.asarray(model(x, training=False))
    np.testing.assert_allclose(stream_rows(from_keras(model), x), expected, atol=FLOAT32_TOL, rtol=0)
    assert np.ptp(expected) > 0.1


def window_zoo(K, stateful: bool = False):
    """Time-mixing layers over a 5-step window, and window values after return_sequences=False."""
    L = K.layers
    window = 5
    x = K.Input(batch_shape=(1, window, FEATURES)) if stateful else K.Input(shape=(window, FEATURES))
    h = L.LSTM(6, return_sequences=True, stateful=stateful)(x)
    last = L.LSTM(4, stateful=stateful)(h)
    pooled = [L.GlobalAveragePooling1D()(h), L.GlobalMaxPooling1D()(h), L.Reshape((window * 6,))(h), L.Flatten()(h)]
    per_window = [L.Flatten()(last), L.Reshape((4,))(last)]
    return K.Model(x, L.Dense(2, activation="softmax")(L.Concatenate()(pooled + per_window)))


def test_time_mixing_layers_as_a_chunk_model_equal_keras_stateful(K):
    model = window_zoo(K)
    randomize(model)
    stateful = window_zoo(K, stateful=True)
    stateful.set_weights(model.get_weights())
    chunks = StreamingModel(from_keras(model, steps_per_call=5))
    x = sequences(1, 15)[0]
    for start in range(0, len(x), 5):
        expected = np.asarray(stateful.predict_on_batch(x[None, start : start + 5]))
        np.testing.assert_allclose(chunks.step(x[start : start + 5]), expected, atol=FLOAT32_TOL, rtol=0)
