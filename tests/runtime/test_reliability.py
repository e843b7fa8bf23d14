"""Trust nothing: lying or damaged models, NaN and ragged inputs, atomic step_many, threads."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pytest

from tflstm.runtime import InputError, ModelError, StateError, StreamingModel
from tflstm.runtime import executor as executor_module
from tflstm.runtime.finite import has_nonfinite, nonfinite_masks

from conftest import ROOT

TAMPERED = {
    "state_on_a_weight": r"states name tensors \[1, 3, 34, 36\]; the model's fused LSTM ops keep their state in",
    "state_on_a_scratch_tensor": r"states name tensors \[3, 34, 35, 36\]",
    "state_out_of_range": r"states name tensors \[3, 34, 36, 48\]",
    "output_on_a_weight": "which is not a model output",
    "input_dtype_lie": "but the model's tensor 0 is",
    "input_shape_lie": "but the model's tensor 0 is",
    "batch_lie": "the batch size is 4",
    "h_and_c_swapped": "calls 'lstm_0/h' a 'h' state; tensor 34 is the 'c' state",
    "fingerprint_lie": "weights are not the ones its metadata describes",
    "format_version_1": "format version 1 is not supported",
    "ill_typed_shape": "shape must be a list of non-negative ints",
    "checksum_wrong": "The model file is damaged: its sha256 is",
    "metadata_removed": "has a 'step' signature, as tflstm writes, but no tflstm metadata",
    "one_bit_flipped": "The model file is damaged: its sha256 is",
    "truncated": r"The .tflite flatbuffer is damaged: .* lies outside its \d+ bytes",
}


@pytest.mark.parametrize("name", sorted(TAMPERED))
@pytest.mark.parametrize("source", ["path", "bytes"])
def test_lying_or_damaged_model_is_refused_before_the_interpreter(fixtures, backend, name, source):
    path = fixtures / "tampered" / f"{name}.tflite"
    model = path if source == "path" else path.read_bytes()
    with pytest.raises(ModelError, match=TAMPERED[name]):
        StreamingModel(model, backend=backend)


def test_the_caller_bytes_are_never_written(fixtures, reference, backend):
    content = (fixtures / "step_float32.tflite").read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    model = StreamingModel(content, backend=backend, streams="swap")
    for row in reference["x"][0]:
        model.step(row)
        model.stream("other").step(row[::-1].copy())
    assert hashlib.sha256(content).hexdigest() == digest


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_nonfinite_masks_find_exactly_nan_and_inf(byteorder):
    dtype = np.dtype(np.float32).newbyteorder("<" if byteorder == "little" else ">")
    values = np.array([0.0, -0.0, 1.5, -3e38, 3.4028235e38, 1e-45, -1e-40, 7.0], dtype)
    masks = nonfinite_masks(len(values))
    assert not has_nonfinite(values.tobytes(), masks, byteorder)
    for bad in (np.nan, np.inf, -np.inf, np.float32(np.nan) * -1):
        for position in range(len(values)):
            changed = values.copy()
            changed[position] = bad
            assert has_nonfinite(changed.tobytes(), masks, byteorder), (bad, position)


@pytest.mark.parametrize("model_name", ["step_float32.tflite", "step_int8.tflite", "step_normalized_float32.tflite"])
@pytest.mark.parametrize("shape", [(3,), (1, 3)])
def test_nan_and_inf_are_refused_and_the_state_kept(fixtures, reference, backend, model_name, shape):
    model = StreamingModel(fixtures / model_name, backend=backend)
    for row in reference["x"][0, :3]:
        model.step(row)
    before = model.state
    for bad, position in ((np.nan, 1), (np.inf, 2), (-np.inf, 0)):
        x = reference["x"][0, 3].copy()
        x[position] = bad
        with pytest.raises(InputError, match=rf"non-finite values at positions \[\(.*{position},?\)\]"):
            model.step(x.reshape(shape))
        for name, value in model.state.items():
            np.testing.assert_array_equal(value, before[name])


@pytest.mark.filterwarnings("ignore:overflow encountered in divide:RuntimeWarning")  # the hot path's numpy warning
@pytest.mark.parametrize("as_list", [False, True])  # the hot path, and Inputs.prepare
def test_finite_inputs_that_normalization_overflows_are_refused(fixtures, reference, backend, as_list):
    model = StreamingModel(fixtures / "step_normalized_float32.tflite", backend=backend)  # std 0.5 for feature 1
    model.step(reference["x"][0, 0])
    before = model.state
    x = reference["x"][0, 1].copy()
    x[1] = 3e38  # finite, but (3e38 + 1) / 0.5 is not
    with pytest.raises(InputError, match=r"normalizing it .* overflows float32 at positions \[\(1,\)\]"):
        model.step(x.tolist() if as_list else x)
    for name, value in model.state.items():
        np.testing.assert_array_equal(value, before[name])


def test_zero_mean_normalization_equals_the_general_path(backend):
    model = StreamingModel(ROOT / "android_assets" / "digits_step_float32.tflite", backend=backend)
    general = StreamingModel(ROOT / "android_assets" / "digits_step_float32.tflite", backend=backend)
    assert not np.any(model.metadata.normalization["mean"])  # pixels / 16: the hot path only divides
    for row in np.random.default_rng(3).integers(0, 17, size=(24, 8)).astype(np.float32):
        np.testing.assert_array_equal(model.step(row), general.step(row.tolist()))  # a list: (x - mean) / std


def test_nonfinite_inputs_pass_when_allowed(fixtures, backend):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend, allow_nonfinite=True)
    clean = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    assert model.step(np.array([np.nan, 0.0, np.inf], np.float32)).shape == (2,)  # no InputError
    model.reset()
    np.testing.assert_array_equal(model.step(np.ones(3, np.float32)), clean.step(np.ones(3, np.float32)))


def test_ragged_masked_and_nonnumeric_inputs_are_refused(fixtures, backend):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    with pytest.raises(InputError, match="rectangular array of floats"):
        model.step([[1.0, 2.0], [3.0]])
    with pytest.raises(InputError, match="masked array"):
        model.step(np.ma.masked_array(np.zeros(3, np.float32), mask=[0, 1, 0]))
    with pytest.raises(InputError, match="must hold floats"):
        model.step(np.array(["1", "2", "3"]))
    with pytest.raises(InputError, match="rectangular array of floats"):
        model.step([1.0, None, 2.0])


def test_nonfinite_state_is_refused(fixtures, backend):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    state = model.zero_state()
    state["lstm_1/c"][0, 3] = np.nan
    with pytest.raises(StateError, match="'lstm_1/c' holds non-finite values"):
        model.run_step(np.zeros(3, np.float32), state)
    with pytest.raises(StateError, match="'lstm_1/c' holds non-finite values"):
        model.state = state


@pytest.mark.parametrize("model_name", ["step_float32.tflite", "step_b4_float32.tflite"])
def test_step_many_is_all_or_nothing(fixtures, reference, backend, model_name):
    model = StreamingModel(fixtures / model_name, backend=backend)
    x = reference["x"]
    model.step_many({"a": x[0, 0], "b": x[1, 0]})
    before = {key: model.stream(key).state for key in ("a", "b")}
    bad = x[2, 0].copy()
    bad[1] = np.nan
    for inputs in ({"a": x[0, 1], "b": x[1, 1], "new": bad}, {"a": x[0, 1], "new": np.zeros(5, np.float32)}):
        with pytest.raises(InputError):
            model.step_many(inputs)
        assert sorted(model) == ["a", "b"]
        for key in ("a", "b"):
            for name, value in model.stream(key).state.items():
                np.testing.assert_array_equal(value, before[key][name])


def test_a_removed_stream_refuses_to_be_used(fixtures, backend):
    model = StreamingModel(fixtures / "step_b4_float32.tflite", backend=backend)
    stream = model.stream("gone")
    model.remove_stream("gone")
    with pytest.raises(StateError, match="Stream 'gone' was removed"):
        stream.step(np.zeros(3, np.float32))
    with pytest.raises(StateError, match="Stream 'gone' was removed"):
        stream.state


@pytest.mark.parametrize(
    "model_name, streams, hot_path",
    [("step_float32.tflite", "interpreter", "C"), ("step_float32.tflite", "swap", "C"),
     ("step_int8.tflite", "swap", "C"), ("step_b4_float32.tflite", "swap", "C"),
     ("step_float32.tflite", "swap", "Python")],
)
def test_threads_give_the_serial_results(fixtures, backend, monkeypatch, model_name, streams, hot_path):
    """8 threads, each stepping its own stream 10,000 times, while the main thread steps the
    model's own state and calls run_step and run_step_packed: every output and state equals a
    serial replay, bit for bit (on the C hot path, and on its Python fallback)."""
    if hot_path == "Python":
        monkeypatch.setattr(executor_module, "NATIVE", None)
    threads, steps = 8, 10_000
    rng = np.random.default_rng(5)
    x = rng.normal(size=(threads, 64, 3)).astype(np.float32)
    model = StreamingModel(fixtures / model_name, backend=backend, streams=streams)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(threads + 1)

    def worker(k: int) -> None:
        try:
            stream = model.stream(k)
            start.wait()
            results[k] = np.stack([stream.step(x[k, t % 64]) for t in range(steps)])
        except BaseException as err:  # reported below
            errors.append(err)

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for worker_thread in workers:
        worker_thread.start()
    start.wait()
    state, packed, calls = model.zero_state(), None, 0
    own_inputs = np.zeros((model.batch_size, 3), np.float32) if model.batch_size > 1 else np.zeros(3, np.float32)
    while any(t.is_alive() for t in workers):
        model.step(own_inputs + 1)
        _, state = model.run_step(own_inputs, state)
        _, packed = model.run_step_packed(own_inputs - 1, packed)
        calls += 1
    for worker_thread in workers:
        worker_thread.join()
    assert not errors, errors
    serial = StreamingModel(fixtures / model_name, backend=backend, streams=streams)
    serial_state, serial_packed = serial.zero_state(), None
    for _ in range(calls):
        serial.step(own_inputs + 1)
        _, serial_state = serial.run_step(own_inputs, serial_state)
        _, serial_packed = serial.run_step_packed(own_inputs - 1, serial_packed)
    assert packed == serial_packed
    for name, value in serial.state.items():
        np.testing.assert_array_equal(model.state[name], value)
        np.testing.assert_array_equal(state[name], serial_state[name])
    for k in range(threads):
        stream = serial.stream(k)
        expected = np.stack([stream.step(x[k, t % 64]) for t in range(steps)])
        np.testing.assert_array_equal(results[k], expected, err_msg=f"thread {k}")
