"""LSTMStepFunction and local_environment without a cluster: checks, sizes, record types, errors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from pyflink.common import Types

from jobs import FLOAT32_MODEL, INT8_MODEL
from tflstm.flink import LSTMStepFunction, local_environment
from tflstm.flink.environment import find_java
from tflstm.flink import step_function
from tflstm.flink.step_function import key_and_outputs, last_field
from tflstm.runtime import ModelError, StreamingModel


def test_state_bytes_per_key_and_state_name():
    float32, int8 = LSTMStepFunction(FLOAT32_MODEL), LSTMStepFunction(INT8_MODEL)
    assert (float32.state_nbytes, int8.state_nbytes) == (1536, 576)  # h, c of 128 + 64 units
    assert float32.state_name == "tflstm-" + StreamingModel(FLOAT32_MODEL).metadata.fingerprint[:16]
    assert float32.state_name != int8.state_name


def test_default_records_and_their_type():
    y = np.arange(10, dtype=np.float32) / 7
    record = ("s1", 3, [0.5] * 8)
    assert last_field("s1", record) == [0.5] * 8
    assert key_and_outputs("s1", record, y) == ("s1", *[float(v) for v in y])
    assert key_and_outputs("s1", record, {"a": y[:4], "b": y[4:]}) == ("s1", *[float(v) for v in y])
    step = LSTMStepFunction(FLOAT32_MODEL)
    assert step.output_type(Types.STRING()) == Types.TUPLE([Types.STRING()] + [Types.FLOAT()] * 10)


def test_output_type_refuses_a_custom_postprocess():
    step = LSTMStepFunction(FLOAT32_MODEL, postprocess=lambda key, record, y: str(y))
    with pytest.raises(ValueError, match="with a custom `postprocess`, give `process\\(\\)` the type"):
        step.output_type(Types.STRING())


def test_bad_arguments_name_what_was_expected(tmp_path):
    with pytest.raises(TypeError, match="`reset` must be callable, got int"):
        LSTMStepFunction(FLOAT32_MODEL, reset=1)
    with pytest.raises(ValueError, match="`state_ttl_ms` must be a positive int or None, got 0"):
        LSTMStepFunction(FLOAT32_MODEL, state_ttl_ms=0)
    with pytest.raises(ModelError, match="Expected a .tflite flatbuffer"):
        LSTMStepFunction(b"not a model")
    with pytest.raises(ValueError, match="`execution_mode` must be one of \\('thread', 'process'\\), got 'threads'"):
        local_environment(tmp_path, execution_mode="threads")
    with pytest.raises(ValueError, match="`state_backend` must be one of \\('hashmap', 'rocksdb'\\), got 'heap'"):
        local_environment(tmp_path, state_backend="heap")
    with pytest.raises(ValueError, match="`parallelism` must be an int >= 1, got 0"):
        local_environment(tmp_path, parallelism=0)
    with pytest.raises(ValueError, match="no whitespace"):
        local_environment(tmp_path / "a b")


def test_batched_models_are_refused(monkeypatch):
    # No batched model can be made without TensorFlow: the loaded model claims batch 4 instead.
    metadata = StreamingModel(FLOAT32_MODEL).metadata
    monkeypatch.setattr(step_function, "StreamingModel", lambda *args, **kwargs: SimpleNamespace(
        batch_size=4, metadata=metadata))
    with pytest.raises(ValueError, match="needs a batch-1 step model; this one has batch 4"):
        LSTMStepFunction(FLOAT32_MODEL)


def test_a_missing_java_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(RuntimeError, match=f"JAVA_HOME={tmp_path} has no bin/java.*openjdk-17"):
        find_java()
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="no `java` on PATH and JAVA_HOME is not set"):
        find_java()
