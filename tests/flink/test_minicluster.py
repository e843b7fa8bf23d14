"""LSTMStepFunction on the local mini-cluster: every key equals a serial replay; failures recover exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from pyflink.common import Types

from jobs import (
    FLOAT32_MODEL,
    INT8_MODEL,
    FailOnceAfterCheckpoint,
    PauseAt,
    csv_line,
    even_steps_only,
    max_error,
    outputs_by_step,
    read_lines,
    sensor_rows,
    serial_replay,
    steps_where,
    tuple_line,
    write_lines,
)
from tflstm.flink import LSTMStepFunction, local_environment


def run(tmp_path: Path, step: LSTMStepFunction, *, keys: int, steps: int, before_step=None, **environment) -> dict:
    """Runs sensor rows -> `step` (emitting `csv_line`s) -> FileSink to the end; (sensor, t) -> outputs read back."""
    env = local_environment(tmp_path, **environment)
    rows = sensor_rows(env, keys=keys, steps=steps, before_step=before_step)
    write_lines(rows.process(step, output_type=Types.STRING()), tmp_path / "out")
    env.execute("tflstm-test")
    return outputs_by_step(read_lines(tmp_path / "out"))


@pytest.mark.parametrize(
    ("execution_mode", "state_backend"),
    [("thread", "hashmap"), *[pytest.param(*modes, marks=pytest.mark.slow)
                              for modes in [("thread", "rocksdb"), ("process", "hashmap"), ("process", "rocksdb")]]],
)
def test_every_key_equals_a_serial_replay(tmp_path, execution_mode, state_backend):
    keys, steps = 200, 40
    step = LSTMStepFunction(FLOAT32_MODEL, postprocess=csv_line)
    got = run(tmp_path, step, keys=keys, steps=steps, execution_mode=execution_mode, state_backend=state_backend,
              parallelism=2, checkpoint_interval_ms=500)
    expected = serial_replay(FLOAT32_MODEL, keys=keys, steps=steps)
    assert got.keys() == expected.keys()
    assert max_error(got, expected) == 0.0


def test_int8_states_are_carried_bit_exactly_with_the_model_shipped_as_bytes(tmp_path):
    keys, steps = 50, 20
    step = LSTMStepFunction(INT8_MODEL.read_bytes(), postprocess=csv_line)
    got = run(tmp_path, step, keys=keys, steps=steps, checkpoint_interval_ms=500)
    expected = serial_replay(INT8_MODEL, keys=keys, steps=steps)
    assert got.keys() == expected.keys()
    assert max_error(got, expected) == 0.0


def test_reset_end_and_records_left_out(tmp_path):
    keys, steps = 20, 30
    step = LSTMStepFunction(FLOAT32_MODEL, reset=steps_where(10, 0), end=steps_where(7, 6), postprocess=even_steps_only)
    got = run(tmp_path, step, keys=keys, steps=steps)
    expected = serial_replay(FLOAT32_MODEL, keys=keys, steps=steps, zero_at=lambda t: t % 10 == 0 or t % 7 == 0)
    assert got.keys() == {(key, t) for key, t in expected if t % 2 == 0}
    assert max_error(got, expected) == 0.0


def test_default_records_carry_the_key_and_exact_outputs(tmp_path):
    keys, steps = 20, 10
    env = local_environment(tmp_path)
    step = LSTMStepFunction(FLOAT32_MODEL)
    records = sensor_rows(env, keys=keys, steps=steps).process(step, output_type=step.output_type(Types.STRING()))
    write_lines(records.map(tuple_line, output_type=Types.STRING()), tmp_path / "out")
    env.execute("tflstm-test")
    expected = serial_replay(FLOAT32_MODEL, keys=keys, steps=steps)
    lines = Counter(tuple_line((key, *y.tolist())) for (key, _), y in expected.items())
    assert Counter(read_lines(tmp_path / "out")) == lines


@pytest.mark.slow  # sleeps 4 s
def test_idle_keys_expire_with_the_state_ttl(tmp_path):
    keys, steps, pause_step = 5, 12, 6
    step = LSTMStepFunction(FLOAT32_MODEL, postprocess=csv_line, state_ttl_ms=1000)
    got = run(tmp_path, step, keys=keys, steps=steps, before_step=PauseAt(pause_step * keys, seconds=4.0))
    expected = serial_replay(FLOAT32_MODEL, keys=keys, steps=steps, zero_at=lambda t: t == pause_step)
    assert got.keys() == expected.keys()
    assert max_error(got, expected) == 0.0


@pytest.mark.parametrize(
    ("execution_mode", "state_backend"),
    [("thread", "rocksdb"), pytest.param("process", "hashmap", marks=pytest.mark.slow)],
)
def test_a_failure_recovers_exactly_once(tmp_path, execution_mode, state_backend):
    keys, steps = 100, 200
    marks = tmp_path / "marks"
    marks.mkdir()
    fail = FailOnceAfterCheckpoint(tmp_path / "checkpoints", marks, after=keys * steps // 4)
    step = LSTMStepFunction(FLOAT32_MODEL, postprocess=csv_line)
    got = run(tmp_path, step, keys=keys, steps=steps, before_step=fail, execution_mode=execution_mode,
              state_backend=state_backend, checkpoint_interval_ms=200, restart_attempts=1)
    failed_at, resumed_at = int((marks / "failed").read_text()), int((marks / "resumed").read_text())
    assert fail.after < resumed_at <= failed_at, "the restarted job must resume from a checkpoint, not from scratch"
    expected = serial_replay(FLOAT32_MODEL, keys=keys, steps=steps)
    assert got.keys() == expected.keys(), "no row lost (outputs_by_step fails on duplicates)"
    assert max_error(got, expected) == 0.0, "every key's state restored exactly"
