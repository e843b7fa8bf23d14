"""StreamingModel basics (the full runtime is issue 4): functional step, reset, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tflstm
from tflstm.runtime import InputError, ModelError, StateError, StreamingModel, TFLSTMError
from tfgraphs import build, copy_weights, randomize

T, B, D = 6, 1, 3


def cells():
    return [tflstm.TFLiteLSTMCell(16, use_peepholes=True), tflstm.TFLiteLSTMCell(8)]


@pytest.fixture(scope="module")
def models():
    seq = build(cells, T, B, D)
    randomize(seq, seed=3)
    step = build(cells, 1, B, D)
    copy_weights(seq, step)
    x = np.random.default_rng(0).normal(size=(T, B, D)).astype(np.float32)
    expected = seq.sess.run(seq.y, {seq.x: x})
    step_model = tflstm.convert.from_session(step.sess, [step.x], [step.y], streaming=True)
    seq_model = tflstm.convert.from_session(seq.sess, [seq.x], [seq.y])
    return step_model, seq_model, x, expected


def test_step_and_run_step_match_tensorflow_and_reset_restarts(models):
    step_model, _, x, expected = models
    model = StreamingModel(step_model)
    first = np.stack([model.step(x[t, 0]) for t in range(T)])
    np.testing.assert_allclose(first, expected[:, 0], atol=1e-5, rtol=0)
    model.reset()
    assert all(not v.any() for v in model.state.values())
    again = np.stack([model.step(x[t, 0]) for t in range(T)])
    np.testing.assert_array_equal(again, first)
    state = model.zero_state()
    for t in range(T):
        y, state = model.run_step(x[t], state)
        np.testing.assert_allclose(y, expected[t], atol=1e-5, rtol=0)
    for name, value in model.state.items():
        np.testing.assert_array_equal(state[name], value)


def test_state_is_a_copy_and_can_be_set(models):
    step_model, _, x, expected = models
    model = StreamingModel(step_model)
    for t in range(3):
        model.step(x[t, 0])
    saved = model.state
    saved_copy = {k: v.copy() for k, v in saved.items()}
    tail = np.stack([model.step(x[t, 0]) for t in range(3, T)])
    for k in saved:
        np.testing.assert_array_equal(saved[k], saved_copy[k])
    model.state = saved
    np.testing.assert_array_equal(np.stack([model.step(x[t, 0]) for t in range(3, T)]), tail)
    np.testing.assert_allclose(tail, expected[3:, 0], atol=1e-5, rtol=0)


def test_errors_name_what_was_expected(models):
    step_model, seq_model, _, _ = models
    model = StreamingModel(step_model)
    with pytest.raises(InputError, match=r"shape \[3\], got \[4\]"):
        model.step(np.zeros(4, np.float32))
    with pytest.raises(InputError, match="floats, got int64"):
        model.step(np.zeros(3, np.int64))
    with pytest.raises(StateError, match=r"Expected state names \['lstm_0/c', 'lstm_0/h', 'lstm_1/c', 'lstm_1/h'\]"):
        model.state = {"lstm_0/c": np.zeros((1, 16), np.float32)}
    bad = model.zero_state()
    bad["lstm_1/h"] = np.zeros((1, 9), np.float32)
    with pytest.raises(StateError, match=r"'lstm_1/h' must be float32 \[1, 8\], got float32 \[1, 9\]"):
        model.run_step(np.zeros(3, np.float32), bad)
    with pytest.raises(ModelError, match="Expected a step model.*'sequence'"):
        StreamingModel(seq_model)
    with pytest.raises(ModelError, match="Expected a .tflite flatbuffer"):
        StreamingModel(b"garbage bytes")
    assert issubclass(InputError, TFLSTMError) and issubclass(TFLSTMError, ValueError)


def test_runtime_import_does_not_import_tensorflow():
    code = (
        "import sys, tflstm.runtime, tflstm; "
        "assert not any(m.split('.')[0] == 'tensorflow' for m in sys.modules), 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
