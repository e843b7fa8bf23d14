"""from_keras on trained Keras 3 and tf-keras models: streaming parity past the window, fused ops, chunks.

Each flavor trains the issue's stream classifier, a functional model with two
LSTM branches merged per step, and the Flatten-over-the-window model once
(module fixtures); every test converts from them.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import keras_models as km
from tflstm import flatbuf, fused_op
from tflstm.convert import UnsupportedModelError, from_keras
from tflstm.format import TOLERANCES, read_metadata
from tflstm.runtime import SequenceModel, StreamingModel

FLOAT32_TOL = TOLERANCES["float32"]
STREAM_STEPS = 3 * km.WINDOW  # well past the training window
BUILDERS = {"stream_classifier": (km.stream_classifier, False), "two_branches": (km.two_branches, True)}


@pytest.fixture(scope="module", params=["keras", "tf_keras"])
def K(request):
    module = importlib.import_module(request.param)
    module.utils.set_random_seed(0)
    return module


@pytest.fixture(scope="module")
def trained(K):
    """Per model name: (trained model, the same weights for any input length)."""
    models = {}
    for name, (builder, per_step) in BUILDERS.items():
        model = km.train(K, builder(K), per_step)
        models[name] = (model, km.any_length_copy(K, builder, model))
    return models


@pytest.fixture(scope="module")
def streams(trained):
    """Per model name: (x [3, STREAM_STEPS, DEPTH], Keras' outputs after every step [3, STREAM_STEPS, outputs])."""
    x = km.synthetic(3, STREAM_STEPS, seed=1)
    return {name: (x, km.outputs_at_every_step(any_length, x)) for name, (_, any_length) in trained.items()}


def stream(converted: bytes, x: np.ndarray, steps_per_call: int = 1) -> np.ndarray:
    """The converted model's outputs for each sequence of x, fed steps_per_call steps per call from a reset."""
    model = StreamingModel(converted)
    results = []
    for sequence in x:
        model.reset()
        if steps_per_call == 1:  # x [features] -> y [outputs]
            results.append(np.stack([model.step(row) for row in sequence]))
        else:  # x [k, features] -> y [k or 1, outputs]
            k = steps_per_call
            results.append(np.concatenate([model.step(sequence[t : t + k]) for t in range(0, len(sequence), k)]))
    return np.stack(results)


@pytest.fixture(scope="module")
def window_models(K):
    """The Flatten model, trained, and its stateful=True batch-1 twin with the same weights."""
    model = km.train(K, km.flatten_window(K), per_step=False)
    stateful = km.flatten_window(K, stateful=True)
    stateful.set_weights(model.get_weights())
    return model, stateful


def lstm_names(model) -> list[str]:
    return [layer.name for layer in model.layers if type(layer).__name__ == "LSTM"]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_streams_one_sample_at_a_time_like_keras_past_the_window(trained, streams, name):
    x, expected = streams[name]
    np.testing.assert_allclose(stream(from_keras(trained[name][0]), x), expected, atol=FLOAT32_TOL, rtol=0)
    assert np.ptp(expected) > 0.1  # the outputs move: parity is not between constants


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_one_fused_op_per_lstm_layer_and_states_named_after_the_layers(trained, name):
    model, _ = trained[name]
    converted = from_keras(model)
    ops = flatbuf.op_names(flatbuf.read_model(converted))
    assert ops.count(fused_op.OP_NAME) == len(lstm_names(model))
    assert "WHILE" not in ops
    metadata = read_metadata(converted)
    assert [(s.layer, s.kind) for s in metadata.states] == [(n, k) for n in lstm_names(model) for k in ("h", "c")]
    assert (metadata.kind, metadata.time_steps) == ("step", 1)


@pytest.mark.parametrize("quantize", ["float16", "dynamic", "int8"])
def test_stream_classifier_quantized(trained, streams, quantize):
    calibration = km.synthetic(60, km.WINDOW, seed=2)  # Keras layout: [n, time, features]
    converted = from_keras(
        trained["stream_classifier"][0], quantize=quantize,
        representative_dataset=(lambda: iter(calibration)) if quantize == "int8" else None,
    )
    assert read_metadata(converted).quantization == quantize
    x, expected = streams["stream_classifier"]
    np.testing.assert_allclose(stream(converted, x), expected, atol=TOLERANCES[quantize], rtol=0)


def test_saved_files_convert_like_the_model(K, tmp_path):
    """.h5 for both, .keras for Keras 3, a SavedModel directory for tf-keras."""
    model = K.Sequential([K.Input(shape=(km.WINDOW, km.DEPTH)), K.layers.LSTM(4), K.layers.Dense(1)])
    paths = [tmp_path / "model.h5", tmp_path / ("model.keras" if K.__name__ == "keras" else "saved_model")]
    x = km.synthetic(1, STREAM_STEPS, seed=4)
    expected = stream(from_keras(model), x)
    for path in paths:
        model.save(path, **({} if path.suffix else {"save_format": "tf"}))
        np.testing.assert_array_equal(stream(from_keras(path), x), expected, err_msg=str(path))


def test_batched_step_model_steps_several_streams_per_invoke(trained, streams):
    x, expected = streams["two_branches"]
    model = StreamingModel(from_keras(trained["two_branches"][0], batch_size=4))
    assert model.batch_size == 4
    steps = [model.step_many({n: x[n, t] for n in range(len(x))}) for t in range(STREAM_STEPS)]
    got = np.stack([[step[n] for step in steps] for n in range(len(x))])
    np.testing.assert_allclose(got, expected, atol=FLOAT32_TOL, rtol=0)


def test_chunks_of_k_steps_return_each_chunks_outputs(trained, streams):
    """A per-step model as a chunk model: k steps per call, the outputs of the chunk's steps."""
    k = 3
    chunks = from_keras(trained["two_branches"][0], steps_per_call=k)
    assert (read_metadata(chunks).kind, read_metadata(chunks).time_steps) == ("step", k)
    x, expected = streams["two_branches"]
    np.testing.assert_allclose(stream(chunks, x, k), expected, atol=FLOAT32_TOL, rtol=0)


def test_chunk_of_a_return_sequences_false_model_gives_the_output_after_its_last_step(trained, streams):
    k = 3
    x, expected = streams["stream_classifier"]
    chunks = from_keras(trained["stream_classifier"][0], steps_per_call=k)
    np.testing.assert_allclose(stream(chunks, x, k), expected[:, k - 1 :: k], atol=FLOAT32_TOL, rtol=0)


def test_flatten_model_as_chunk_model_equals_keras_stateful_window_after_window(window_models):
    model, stateful = window_models
    x = km.synthetic(1, 4 * km.WINDOW, seed=7)[0]
    chunks = StreamingModel(from_keras(model, steps_per_call=km.WINDOW))
    km.reset_states(stateful)
    for start in range(0, len(x), km.WINDOW):
        window = x[start : start + km.WINDOW]
        expected = np.asarray(stateful.predict_on_batch(window[None]))
        got = chunks.step(window)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=FLOAT32_TOL, rtol=0)
    # The state carried between windows matters: a fresh model gives another last output.
    assert np.abs(np.asarray(model.predict_on_batch(window[None])) - got).max() > 1e-3


def test_a_stateful_keras_model_converts_like_its_stateless_twin(window_models):
    model, stateful = window_models
    x = km.synthetic(1, 2 * km.WINDOW, seed=9)
    expected = stream(from_keras(model, steps_per_call=km.WINDOW), x, km.WINDOW)
    np.testing.assert_array_equal(stream(from_keras(stateful, steps_per_call=km.WINDOW), x, km.WINDOW), expected)


def test_flatten_model_as_sequence_model_runs_windows_with_or_without_reset(window_models):
    model, stateful = window_models
    x = km.synthetic(1, 3 * km.WINDOW, seed=8)[0]
    sequence = SequenceModel(from_keras(model, streaming=False))
    assert sequence.time_steps == km.WINDOW
    windows = [x[start : start + km.WINDOW] for start in range(0, len(x), km.WINDOW)]
    km.reset_states(stateful)
    for k, window in enumerate(windows):
        expected = np.asarray(stateful.predict_on_batch(window[None]))
        np.testing.assert_allclose(sequence.run_sequence(window, reset=k == 0), expected, atol=FLOAT32_TOL, rtol=0)
    for window in windows:
        expected = np.asarray(model.predict_on_batch(window[None]))
        np.testing.assert_allclose(sequence.run_sequence(window), expected, atol=FLOAT32_TOL, rtol=0)


@pytest.mark.parametrize("steps_per_call", [1, 4])
def test_flatten_needs_steps_per_call_equal_to_the_window(window_models, steps_per_call):
    model, _ = window_models
    with pytest.raises(UnsupportedModelError) as raised:
        from_keras(model, steps_per_call=steps_per_call)
    message = str(raised.value)
    assert "'flatten' (Flatten) mixes the 7 time steps of the model's window" in message
    assert f"steps_per_call={km.WINDOW}" in message
    assert "drop Flatten and use return_sequences=False" in message
