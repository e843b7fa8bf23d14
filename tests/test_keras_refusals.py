"""Every refusal of from_keras, for Keras 3 and tf-keras: before any graph is built, naming the layer, why, what to do."""

from __future__ import annotations

import importlib

import pytest

import tflstm.convert.keras
from tflstm.convert import UnsupportedModelError, from_keras

W, D = 7, 3


@pytest.fixture(params=["keras", "tf_keras"])
def K(request, monkeypatch):
    def built(*args, **kwargs):
        raise AssertionError("from_keras built a graph for a model it must refuse")

    monkeypatch.setattr(tflstm.convert.keras, "rebuild", built)
    return importlib.import_module(request.param)


def sequential(K, *layers):
    return K.Sequential([K.Input(shape=(W, D)), *layers, K.layers.Dense(1)])


def with_lstm(K, make_layer):
    """x -> LSTM(4, return_sequences=True) -> the layer (called on (h, h) when it takes two) -> Dense."""
    x = K.Input(shape=(W, D))
    h = K.layers.LSTM(4, return_sequences=True, name="lstm_in")(x)
    return K.Model(x, K.layers.Dense(1)(make_layer(h)))


def lstm_state_as_initial_state(K):
    x = K.Input(shape=(W, D))
    h0 = K.layers.Dense(4, name="h0")(K.layers.Flatten(name="flat")(x))
    return K.Model(x, K.layers.LSTM(4, name="seeded")(x, initial_state=[h0, h0]))


def lstm_returning_state(K):
    x = K.Input(shape=(W, D))
    y, h, _ = K.layers.LSTM(4, return_state=True, name="stateful_out")(x)
    return K.Model(x, K.layers.Add()([y, h]))


def shared_layer(K):
    x = K.Input(shape=(W, D))
    dense = K.layers.Dense(3, name="shared")
    return K.Model(x, K.layers.Add()([dense(x), dense(K.layers.LSTM(3, return_sequences=True)(x))]))


def nested(K):
    inner = K.Sequential([K.Input(shape=(W, D)), K.layers.Dense(2)], name="inner")
    x = K.Input(shape=(W, D))
    return K.Model(x, inner(K.layers.LSTM(D, return_sequences=True)(x)))


def two_inputs(K):
    a, b = K.Input(shape=(W, D)), K.Input(shape=(W, D))
    return K.Model([a, b], K.layers.LSTM(2)(K.layers.Add()([a, b])))


def subclassed(K):
    class Subclassed(K.Model):
        def __init__(self):
            super().__init__()
            self.lstm = K.layers.LSTM(4)

        def call(self, x):
            return self.lstm(x)

    model = Subclassed()
    model(K.ops.zeros((1, W, D)) if K.__name__ == "keras" else __import__("tensorflow").zeros((1, W, D)))
    return model


def custom_layer(K):
    class Doubling(K.layers.Layer):
        def call(self, x):
            return 2 * x

    return sequential(K, K.layers.LSTM(4, return_sequences=True), Doubling(name="doubling"))


CASES = {
    # name: (model builder, from_keras kwargs, message fragments: the layer, why, what to do)
    "bidirectional": (
        lambda K: sequential(K, K.layers.Bidirectional(K.layers.LSTM(4), name="bi")), {},
        ["'bi' (Bidirectional)", "runs a second RNN backwards", "Use a unidirectional LSTM"],
    ),
    "gru": (
        lambda K: sequential(K, K.layers.GRU(4, name="gru")), {},
        ["'gru' (GRU)", "not supported yet", "Replace it with an LSTM layer"],
    ),
    "simple_rnn": (
        lambda K: sequential(K, K.layers.SimpleRNN(4, name="rnn")), {},
        ["'rnn' (SimpleRNN)", "not supported yet", "Replace it with an LSTM layer"],
    ),
    "conv1d_same": (
        lambda K: sequential(K, K.layers.Conv1D(4, 3, padding="same", name="conv")), {},
        ["'conv' (Conv1D)", "padding='same' is not causal", "future ones included", "Remove it"],
    ),
    "conv1d_causal": (
        lambda K: sequential(K, K.layers.Conv1D(4, 3, padding="causal", name="conv")), {},
        ["'conv' (Conv1D)", "causal but not supported yet", "Remove it"],
    ),
    "attention": (
        lambda K: with_lstm(K, lambda h: K.layers.Attention(name="att")([h, h])), {},
        ["'att' (Attention)", "attends over the whole sequence", "cannot compute it. Remove it"],
    ),
    "multi_head_attention": (
        lambda K: with_lstm(K, lambda h: K.layers.MultiHeadAttention(1, 4, name="mha")(h, h)), {},
        ["'mha' (MultiHeadAttention)", "attends over the whole sequence", "Remove it"],
    ),
    "masking": (
        lambda K: sequential(K, K.layers.Masking(name="mask"), K.layers.LSTM(4)), {},
        ["'mask' (Masking)", "masks time steps", "Remove Masking"],
    ),
    "lstm_activation": (
        lambda K: sequential(K, K.layers.LSTM(4, activation="relu", name="relu_lstm")), {},
        ["'relu_lstm' (LSTM)", "activation='relu'", "Retrain with the defaults"],
    ),
    "lstm_recurrent_activation": (
        lambda K: sequential(K, K.layers.LSTM(4, recurrent_activation="hard_sigmoid", name="hard")), {},
        ["'hard' (LSTM)", "recurrent_activation='hard_sigmoid'", "Retrain with the defaults"],
    ),
    "go_backwards": (
        lambda K: sequential(K, K.layers.LSTM(4, go_backwards=True, name="back")), {},
        ["'back' (LSTM)", "runs backwards", "Use go_backwards=False"],
    ),
    "return_state": (
        lstm_returning_state, {}, ["'stateful_out' (LSTM)", "returns its state", "Drop return_state"],
    ),
    "initial_state": (
        lstm_state_as_initial_state, {"steps_per_call": W},
        ["'seeded' (LSTM)", "is called with initial_state", "Call the layer on its input only"],
    ),
    "custom_layer": (
        custom_layer, {}, ["'doubling' (Doubling)", "is a custom layer", "Build the model from supported layers"],
    ),
    "lambda": (
        lambda K: sequential(K, K.layers.Lambda(lambda t: 2 * t, name="lam")), {},
        ["'lam' (Lambda)", "runs arbitrary Python code", "Replace it with built-in layers"],
    ),
    "flatten_in_a_step_model": (
        lambda K: sequential(K, K.layers.LSTM(4, return_sequences=True), K.layers.Flatten(name="flat")), {},
        ["'flat' (Flatten)", "mixes the 7 time steps", "Use steps_per_call=7",
         "drop Flatten and use return_sequences=False"],
    ),
    "pooling_in_a_step_model": (
        lambda K: sequential(K, K.layers.LSTM(4, return_sequences=True), K.layers.GlobalAveragePooling1D(name="gap")),
        {}, ["'gap' (GlobalAveragePooling1D)", "mixes the 7 time steps", "Use steps_per_call=7"],
    ),
    "unsupported_builtin": (
        lambda K: sequential(K, K.layers.Permute((2, 1), name="perm")), {},
        ["'perm' (Permute)", "is not supported", "Supported layers: Activation"],
    ),
    "unsupported_activation": (
        lambda K: sequential(K, K.layers.LSTM(4), K.layers.Dense(2, activation="softsign", name="soft")), {},
        ["'soft' (Dense)", "activation 'softsign'", "Use one of"],
    ),
    "feature_axis": (
        lambda K: sequential(K, K.layers.LSTM(4, return_sequences=True), K.layers.Softmax(axis=1, name="sm")), {},
        ["'sm' (Softmax)", "works along axis 1", "axis=-1"],
    ),
    "shared_layer": (shared_layer, {}, ["'shared' (Dense)", "is called 2 times", "Use a separate layer"]),
    "nested_model": (nested, {}, ["'inner' (Sequential)", "is a nested model", "from its layers directly"]),
    "two_inputs": (two_inputs, {}, ["has 2 inputs", "one input [batch, time, features]"]),
    "subclassed_model": (subclassed, {}, ["is a subclassed model", "Sequential and functional"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_with_the_layer_why_and_what_to_do(K, case):
    builder, kwargs, fragments = CASES[case]
    model = builder(K)
    with pytest.raises(UnsupportedModelError) as raised:
        from_keras(model, **kwargs)
    for fragment in fragments:
        assert fragment in str(raised.value), f"{fragment!r} not in {str(raised.value)!r}"
