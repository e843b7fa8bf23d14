"""LSTMStepFunction on the local mini-cluster: every key equals a serial replay; failures recover exactly once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jobs import (
    FLOAT32_MODEL,
    INT8_MODEL,
    FailOnceAfterCheckpoint,
    add_job,
    csv_line,
    max_error,
    outputs_by_step,
    read_lines,
    serial_replay,
)
from tflstm.flink import LSTMStepFunction, local_environment


def run(tmp_path: Path, model: Path, *, keys: int, steps: int, before_step=None, **environment) -> dict:
    """Runs the test job to its end; (sensor, t) -> outputs read back from the FileSink."""
    env = local_environment(tmp_path, **environment)
    add_job(env, LSTMStepFunction(model, postprocess=csv_line), tmp_path / "out", keys=keys, steps=steps,
            before_step=before_step)
    env.execute("tflstm-test")
    return outputs_by_step(read_lines(tmp_path / "out"))


@pytest.mark.parametrize("execution_mode", ["thread", "process"])
@pytest.mark.parametrize("state_backend", ["hashmap", "rocksdb"])
def test_every_key_equals_a_serial_replay(tmp_path, execution_mode, state_backend):
    keys, steps = 200, 40
    got = run(tmp_path, FLOAT32_MODEL, keys=keys, steps=steps, execution_mode=execution_mode,
              state_backend=state_backend, parallelism=2, checkpoint_interval_ms=500)
    expected = serial_replay(FLOAT32_MODEL, keys=keys, steps=steps)
    assert got.keys() == expected.keys()
    assert max_error(got, expected) == 0.0


def test_int8_states_are_carried_bit_exactly(tmp_path):
    keys, steps = 50, 20
    got = run(tmp_path, INT8_MODEL, keys=keys, steps=steps, checkpoint_interval_ms=500)
    expected = serial_replay(INT8_MODEL, keys=keys, steps=steps)
    assert got.keys() == expected.keys()
    assert max_error(got, expected) == 0.0


@pytest.mark.parametrize(("execution_mode", "state_backend"), [("thread", "rocksdb"), ("process", "hashmap")])
def test_a_failure_recovers_exactly_once(tmp_path, execution_mode, state_backend):
    keys, steps = 100, 200
    marks = tmp_path / "marks"
    marks.mkdir()
    fail = FailOnceAfterCheckpoint(tmp_path / "checkpoints", marks, after=keys * steps // 4)
    got = run(tmp_path, FLOAT32_MODEL, keys=keys, steps=steps, before_step=fail, execution_mode=execution_mode,
              state_backend=state_backend, checkpoint_interval_ms=200, restart_attempts=1)
    failed_at, resumed_at = int((marks / "failed").read_text()), int((marks / "resumed").read_text())
    assert fail.after < resumed_at <= failed_at, "the restarted job must resume from a checkpoint, not from scratch"
    expected = serial_replay(FLOAT32_MODEL, keys=keys, steps=steps)
    assert got.keys() == expected.keys(), "no row lost (duplicates fail in outputs_by_step)"
    assert max_error(got, expected) == 0.0, "every key's state restored exactly"
