"""The step hot path: the C `Step` (tflstm/runtime/_hotpath.c) is built in every test venv, and it and the
Python fallback give the same outputs, states, refusals and errors, bit for bit."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tflstm.format import TOLERANCES
from tflstm.runtime import InputError, ModelError, StreamingModel
from tflstm.runtime import executor as executor_module

from conftest import ROOT

DIGITS = ROOT / "android_assets" / "digits_step_float32.tflite"  # normalization: pixels / 16 (means all 0)
MODELS = ["step_float32.tflite", "step_normalized_float32.tflite", "step_int8.tflite", "step_b4_float32.tflite",
          "keras_window_chunk_float32.tflite", "digits"]


def model_path(fixtures: Path, name: str) -> Path:
    return DIGITS if name == "digits" else fixtures / name


def make_model(path: Path, backend: str, hot_path: str, monkeypatch: pytest.MonkeyPatch, **options) -> StreamingModel:
    """A model whose steps are bound to the C Step or to the Python closure."""
    with monkeypatch.context() as patch:
        if hot_path == "Python":
            patch.setattr(executor_module, "NATIVE", None)
        model = StreamingModel(path, backend=backend, **options)
        if model.batch_size == 1:
            model.stream("other")  # bound now, under the same hot path
    return model


def packed_stepper(model: StreamingModel):
    """A step function carrying a packed state through `run_step_packed`."""
    packed = None

    def step(x: object) -> np.ndarray:
        nonlocal packed
        y, packed = model.run_step_packed(x, packed)
        return y

    return step


def call_inputs(model: StreamingModel, rng: np.random.Generator) -> Iterator[object]:
    """Every form a caller may pass: the accepted shapes in float32, and the forms the general path takes."""
    shape = model._inputs.spec.shape  # e.g. [1, 1, depth], [k, 1, depth], [1, batch, depth]
    shapes = [accepted for accepted, _ in model._inputs.shapes.values()]
    for _ in range(3):
        for accepted in shapes:
            x = rng.normal(size=accepted).astype(np.float32) * 3
            yield x
            yield x.astype(np.float64)
            yield x.tolist()
            yield x.astype(">f4")  # float32 of the other byte order
            wide = np.repeat(x, 2, axis=-1)
            yield wide[..., ::2]  # not contiguous
            frozen = x.copy()
            frozen.flags.writeable = False
            yield frozen
    yield np.zeros(shape, np.float32)


@pytest.mark.parametrize("name", MODELS)
def test_c_and_python_hot_paths_agree_bit_for_bit(fixtures, backend, monkeypatch, name):
    path = model_path(fixtures, name)
    models = {hot: make_model(path, backend, hot, monkeypatch, streams="swap") for hot in ("C", "Python")}
    batched = models["C"].batch_size > 1  # its own rows step as row lanes; run_step_packed takes the hot path
    assert [models[hot].hot_path for hot in models] == ["C", "Python"]
    assert repr(models["Python"]).endswith("hot path Python)")
    if not batched:
        assert type(models["C"].step).__name__ == "Step" and type(models["Python"].step).__name__ == "function"
    steppers = {hot: [packed_stepper(model)] + ([] if batched else [model.step, model.stream("other").step])
                for hot, model in models.items()}
    outputs = {hot: [[step(x) for step in steppers[hot]] for x in call_inputs(model, np.random.default_rng(1))]
               for hot, model in models.items()}
    assert len(outputs["C"]) > 10
    for c_outputs, python_outputs in zip(outputs["C"], outputs["Python"], strict=True):
        for c, p in zip(c_outputs, python_outputs, strict=True):
            assert c.dtype == p.dtype == np.float32 and c.shape == p.shape
            np.testing.assert_array_equal(c, p)
    streams = [("own", lambda model: model)] + ([("other", lambda model: model.stream("other"))]
                                                 if models["C"].batch_size == 1 else [])
    for _, stream_of in streams:
        for state_name, value in stream_of(models["Python"]).state.items():
            np.testing.assert_array_equal(stream_of(models["C"]).state[state_name], value)


def refusals(model: StreamingModel) -> list[tuple[object, str]]:
    """Inputs the hot paths must refuse, each with the first part of the message."""
    depth = model.input_depth
    usual = model._inputs.shapes[min(model._inputs.shapes)][0]  # [depth]: the C path's first entry
    nan, inf = np.zeros(usual, np.float32), np.zeros(usual, np.float32)
    nan.flat[1], inf.flat[-1] = np.nan, -np.inf
    cases = [
        (nan, r"`x` holds non-finite values at positions .*: \[nan\]"),
        (inf, r"`x` holds non-finite values at positions .*: \[-inf\]"),
        (np.zeros(depth + 1, np.float32), "`x` must be one time step of shape"),
        (np.ma.masked_array(np.zeros(usual, np.float32)), "`x` is a masked array"),
        ([[1.0, 2.0], [3.0]], "`x` must be a rectangular array of floats"),
    ]
    if model.metadata.normalization is not None and min(model.metadata.normalization["std"]) < 0.9:
        huge = np.full(usual, 3e38, np.float32)
        cases.append((huge, r"`x` is finite but normalizing it .* overflows float32"))
    return cases


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # numpy warns on the Python path
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # numpy's, on the Python path
@pytest.mark.parametrize("name", ["step_float32.tflite", "step_normalized_float32.tflite", "digits"])
def test_both_hot_paths_refuse_the_same_inputs_with_the_same_messages_and_keep_the_state(
    fixtures, backend, monkeypatch, name
):
    path = model_path(fixtures, name)
    messages: dict[str, list[str]] = {}
    for hot in ("C", "Python"):
        model = make_model(path, backend, hot, monkeypatch)
        model.step(np.ones(model.input_depth, np.float32))
        before = model.state
        messages[hot] = []
        for x, message in refusals(model):
            with pytest.raises(InputError, match=message) as refused:
                model.step(x)
            messages[hot].append(str(refused.value))
            assert not model._main.lock.locked(), hot
        for state_name, value in before.items():
            np.testing.assert_array_equal(model.state[state_name], value)
    assert messages["C"] == messages["Python"]


@pytest.mark.parametrize("hot", ["C", "Python"])
def test_an_interpreter_failure_is_a_model_error_chained_to_it_and_the_lock_is_released(
    fixtures, backend, monkeypatch, hot
):
    model = make_model(fixtures / "step_float32.tflite", backend, hot, monkeypatch)
    executor = model._main

    def failing() -> None:
        raise RuntimeError("tensor arena exhausted")

    def interrupted() -> None:
        raise KeyboardInterrupt

    x = np.ones(3, np.float32)
    with monkeypatch.context() as patch:
        if hot == "Python":
            patch.setattr(executor_module, "NATIVE", None)
        executor._invoke = failing
        step = executor.bind_step()
        executor._invoke = interrupted
        step_interrupted = executor.bind_step()
    with pytest.raises(ModelError, match="The interpreter failed to run the model: tensor arena exhausted") as info:
        step(x)
    assert isinstance(info.value.__cause__, RuntimeError) and not executor.lock.locked()
    with pytest.raises(KeyboardInterrupt):
        step_interrupted(x)
    assert not executor.lock.locked()


@pytest.mark.parametrize("hot", ["C", "Python"])
def test_a_step_waits_for_the_lock(fixtures, backend, monkeypatch, hot):
    model = make_model(fixtures / "step_float32.tflite", backend, hot, monkeypatch)
    done: list[np.ndarray] = []
    with model._main.lock:
        stepper = threading.Thread(target=lambda: done.append(model.step(np.ones(3, np.float32))))
        stepper.start()
        time.sleep(0.2)
        assert stepper.is_alive() and not done  # a step is microseconds: it is waiting for the lock
    stepper.join(10)
    assert len(done) == 1


def test_the_c_hot_path_is_built_and_keeps_its_buffers_alive(fixtures, reference, backend):
    assert executor_module.NATIVE is not None, "the C hot path did not build: pip install -e . with a C compiler"
    x = reference["x"][0]
    step = StreamingModel(fixtures / "step_float32.tflite", backend=backend).step  # the model is dropped
    gc.collect()
    outputs = np.stack([step(row) for row in x])
    np.testing.assert_allclose(outputs, reference["y"][0], atol=TOLERANCES["float32"], rtol=0)


def test_the_c_step_refuses_misuse_with_a_type_error(fixtures, backend):
    model = StreamingModel(fixtures / "step_float32.tflite", backend=backend)
    step_type = type(model.step)
    with pytest.raises(TypeError, match="exactly one positional argument"):
        model.step()
    with pytest.raises(TypeError, match="exactly one positional argument"):
        model.step(x=np.ones(3, np.float32))
    with pytest.raises(TypeError, match="not initialized"):
        step_type.__new__(step_type)(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="initialized once"):
        model.step.__init__(**{})
    with pytest.raises(TypeError):
        step_type()


def test_tflstm_pure_python_forces_the_python_hot_path():
    code = "from tflstm.runtime.executor import NATIVE; print(NATIVE)"
    env = {**os.environ, "TFLSTM_PURE_PYTHON": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "None", done.stderr
