"""StreamingModel and Stream: parity with TensorFlow, interleaving, batching, quantized state."""

from __future__ import annotations

import numpy as np
import pytest

from tflstm.format import TOLERANCES
from tflstm.runtime import StreamingModel

FLOAT32_TOL = TOLERANCES["float32"]


def run_alone(model: StreamingModel, xs: np.ndarray) -> np.ndarray:
    model.reset()
    return np.stack([model.step(x) for x in xs])


@pytest.mark.parametrize("quantize", ["float32", "float16", "dynamic", "int8"])
def test_step_matches_tensorflow(fixtures, reference, backend, quantize):
    model = StreamingModel(fixtures / f"step_{quantize}.tflite", backend=backend)
    assert model.backend == backend
    for s, xs in enumerate(reference["x"]):
        got = run_alone(model, xs)
        assert np.abs(got - reference["y"][s]).max() <= TOLERANCES[quantize]


@pytest.mark.parametrize("streams", ["interpreter", "swap"])
@pytest.mark.parametrize("quantize", ["float32", "int8"])
def test_interleaved_streams_equal_each_alone_and_tensorflow(fixtures, reference, backend, streams, quantize):
    model = StreamingModel(fixtures / f"step_{quantize}.tflite", backend=backend, streams=streams)
    x = reference["x"]
    alone = [run_alone(model, xs) for xs in x]
    states_alone = []
    for xs in x:
        run_alone(model, xs)
        states_alone.append(model.state)
    got = {s: [] for s in range(len(x))}
    for t in range(x.shape[1]):
        for s in (0, 2, 1):  # out of order, and the model's own stream in between
            got[s].append(model.stream(s).step(x[s, t]))
            model.step(x[0, t])
    for s in range(len(x)):
        np.testing.assert_array_equal(np.stack(got[s]), alone[s])
        for name, value in model.stream(s).state.items():
            np.testing.assert_array_equal(value, states_alone[s][name])  # int8/int16 state: bit-exact
        if quantize == "float32":
            np.testing.assert_allclose(np.stack(got[s]), reference["y"][s], atol=FLOAT32_TOL, rtol=0)


def test_run_step_is_functional(fixtures, reference, backend):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend, streams="swap")
    x = reference["x"][0]
    own = model.step(x[0])
    before = model.state
    stream_before = model.stream("a").state
    state = model.zero_state()
    outputs = []
    for row in x:
        y, state = model.run_step(row, state)
        outputs.append(y)
    np.testing.assert_allclose(np.stack(outputs), reference["y"][0], atol=FLOAT32_TOL, rtol=0)
    for name, value in model.state.items():
        np.testing.assert_array_equal(value, before[name])
    for name, value in model.stream("a").state.items():
        np.testing.assert_array_equal(value, stream_before[name])
    model.reset()
    np.testing.assert_array_equal(model.step(x[0]), own)


def test_reset_restores_the_initial_state(fixtures, reference, backend):
    model = StreamingModel(fixtures / "step_int8.tflite", backend=backend)
    zero = model.zero_state()
    first = run_alone(model, reference["x"][1])
    model.reset()
    for name, value in model.state.items():
        np.testing.assert_array_equal(value, zero[name])
    np.testing.assert_array_equal(run_alone(model, reference["x"][1]), first)
    stream = model.stream("s")
    for row in reference["x"][1]:
        stream.step(row)
    stream.reset()
    for name, value in stream.state.items():
        np.testing.assert_array_equal(value, zero[name])


@pytest.mark.parametrize("quantize", ["float32", "int8"])
def test_step_many_equals_each_stream_alone(fixtures, reference, backend, quantize):
    batched = StreamingModel(fixtures / f"step_b4_{quantize}.tflite", backend=backend)
    assert batched.batch_size == 4
    x = np.concatenate([reference["x"], reference["x"][:, ::-1] * 0.5])  # 6 streams: 2 invokes per step
    alone = []
    for s in range(len(x)):
        stream = batched.stream(("alone", s))
        alone.append(np.stack([stream.step(row) for row in x[s]]))
    together = {s: [] for s in range(len(x))}
    for t in range(x.shape[1]):
        keys = list(range(len(x)))
        if t % 3 == 2:
            keys.reverse()  # another grouping of rows: forces a swap
        for s, y in batched.step_many({s: x[s, t] for s in keys}).items():
            together[s].append(y)
    for s in range(len(x)):
        np.testing.assert_array_equal(np.stack(together[s]), alone[s])
    if quantize == "float32":
        np.testing.assert_allclose(np.stack(together[0]), reference["y"][0], atol=FLOAT32_TOL, rtol=0)


def test_batched_model_own_step_takes_the_batch(fixtures, reference, backend):
    batched = StreamingModel(fixtures / "step_b4_float32.tflite", backend=backend)
    x = np.concatenate([reference["x"], reference["x"][:1]])  # 4 sequences
    got = np.stack([batched.step(x[:, t]) for t in range(x.shape[1])], axis=1)
    assert got.shape == (4, x.shape[1], 2)
    np.testing.assert_allclose(got[:3], reference["y"], atol=FLOAT32_TOL, rtol=0)


def test_normalization_from_metadata_is_applied(fixtures, reference, backend):
    model = StreamingModel(fixtures / "step_normalized_float32.tflite", backend=backend)
    assert model.metadata.normalization is not None
    got = run_alone(model, reference["raw_x"][0])
    np.testing.assert_allclose(got, reference["y"][0], atol=1e-4, rtol=0)


def test_pre_and_postprocess_wrap_the_model(fixtures, reference, backend):
    model = StreamingModel(
        fixtures / "step_float32.tflite", backend=backend,
        preprocess=lambda raw: np.asarray(raw, np.float32) / 10.0,
        postprocess=lambda y: float(np.argmax(y)),
    )
    plain = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    for row in reference["x"][0]:
        assert model.step(row * 10.0) == float(np.argmax(plain.step(row)))


def test_stock_keras_fused_model_without_metadata(fixtures, reference, backend):
    model = StreamingModel(fixtures / "keras_stock_step.tflite", backend=backend)
    assert model.state_names == ("lstm_0/h", "lstm_0/c")
    assert "derived_by" in model.metadata.converter
    for s, xs in enumerate(reference["x"]):
        np.testing.assert_allclose(run_alone(model, xs), reference["keras_y"][s], atol=FLOAT32_TOL, rtol=0)
    one, two = model.stream(1), model.stream(2)
    for t in range(reference["x"].shape[1]):
        y1, y2 = one.step(reference["x"][1, t]), two.step(reference["x"][2, t])
        np.testing.assert_allclose(y1, reference["keras_y"][1, t], atol=FLOAT32_TOL, rtol=0)
        np.testing.assert_allclose(y2, reference["keras_y"][2, t], atol=FLOAT32_TOL, rtol=0)


def test_remove_stream_frees_its_state(fixtures, reference, backend):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend, streams="swap")
    model.stream("a").step(reference["x"][0, 0])
    model.remove_stream("a")
    assert "a" not in list(model)
    fresh = model.stream("b")
    for value in fresh.state.values():
        assert not value.any()
    with pytest.raises(KeyError):
        model.remove_stream("a")
