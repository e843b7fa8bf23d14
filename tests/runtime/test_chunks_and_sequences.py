"""Chunk models (k steps per call) and sequence models from Keras, run without TensorFlow; WHILE-loop refusals.

The fixtures hold a Keras 3 LSTM -> LSTM -> Flatten -> Dense model over a 7-step
window, converted as a chunk model and as a sequence model, and Keras' outputs
for sequences of 3 windows: `stateful_y` (Keras stateful=True, window after
window) and `fresh_y` (each window on its own).
"""

from __future__ import annotations

import numpy as np
import pytest

from tflstm.format import TOLERANCES
from tflstm.runtime import InputError, ModelError, SequenceModel, StreamingModel

FLOAT32_TOL = TOLERANCES["float32"]
WINDOW = 7
CHUNK = "keras_window_chunk_float32.tflite"
SEQUENCE = "keras_window_sequence_float32.tflite"


@pytest.fixture(scope="module")
def keras_window(fixtures) -> dict[str, np.ndarray]:
    with np.load(fixtures / "keras_window.npz") as npz:
        return {key: npz[key] for key in npz.files}


def windows(x: np.ndarray) -> list[np.ndarray]:
    return [x[start : start + WINDOW] for start in range(0, len(x), WINDOW)]


@pytest.mark.parametrize("streams", ["interpreter", "swap"])
def test_chunk_streams_equal_keras_stateful_window_after_window(fixtures, keras_window, backend, streams):
    model = StreamingModel(fixtures / CHUNK, backend=backend, streams=streams)
    assert (model.metadata.kind, model.metadata.time_steps) == ("step", WINDOW)
    x, expected = keras_window["x"], keras_window["stateful_y"]
    interleaved = {n: [] for n in range(len(x))}
    for k in range(x.shape[1] // WINDOW):
        for n in reversed(range(len(x))):  # two streams, alternating, one window each
            interleaved[n].append(model.stream(n).step(x[n, k * WINDOW : (k + 1) * WINDOW]))
    for n in range(len(x)):
        np.testing.assert_allclose(np.concatenate(interleaved[n]), expected[n], atol=FLOAT32_TOL, rtol=0)


def test_chunk_model_takes_k_steps_with_or_without_the_batch_axis(fixtures, keras_window, backend):
    model = StreamingModel(fixtures / CHUNK, backend=backend)
    first = keras_window["x"][0, :WINDOW]
    y = model.step(first)
    model.reset()
    np.testing.assert_array_equal(model.step(first[:, None, :]), y[:, None, :])
    for bad in (first[0], first[:1], first[:-1]):
        with pytest.raises(InputError, match=r"`x` must be 7 time steps of shape \[7, 3\] or \[7, 1, 3\]"):
            model.step(bad)


def test_sequence_model_runs_windows_with_reset_or_carrying_the_state(fixtures, keras_window, backend):
    model = SequenceModel(fixtures / SEQUENCE, backend=backend)
    assert (model.time_steps, model.batch_size) == (WINDOW, 1)
    for n, x in enumerate(keras_window["x"]):
        carried = [model.run_sequence(w, reset=k == 0) for k, w in enumerate(windows(x))]
        np.testing.assert_allclose(np.concatenate(carried), keras_window["stateful_y"][n], atol=FLOAT32_TOL, rtol=0)
        fresh = [model.run_sequence(w) for w in windows(x)]
        np.testing.assert_allclose(np.concatenate(fresh), keras_window["fresh_y"][n], atol=FLOAT32_TOL, rtol=0)
    # The two differ: carrying the state is what makes the windows after the first stateful.
    assert np.abs(keras_window["stateful_y"][:, 1:] - keras_window["fresh_y"][:, 1:]).max() > 1e-3


def test_each_model_kind_is_refused_by_the_other_class(fixtures, backend):
    with pytest.raises(ModelError, match="got a 'sequence' model: run sequence models with SequenceModel"):
        StreamingModel(fixtures / SEQUENCE, backend=backend)
    with pytest.raises(ModelError, match="got a 'step' model: run step models with StreamingModel"):
        SequenceModel(fixtures / CHUNK, backend=backend)


@pytest.mark.parametrize("name", ["keras3_stock_while.tflite", "tfkeras_stateful_stock_while.tflite"])
def test_unfused_while_loop_models_are_refused_with_from_keras_as_the_fix(fixtures, backend, name):
    with pytest.raises(ModelError, match=r"unfused loop \(.*WHILE.*\).*tflstm\.convert\.from_keras"):
        StreamingModel(fixtures / name, backend=backend)
