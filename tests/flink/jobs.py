"""The jobs the Flink tests run on the local mini-cluster, and the serial replay they must equal.

A job: `NumberSequenceSource` (checkpointed: a restored job resumes where its
checkpoint left it) -> record n becomes sensor `s{n % keys}`'s time step
`n // keys` -> `key_by` sensor -> `LSTMStepFunction` -> one CSV line per step
-> `FileSink` (rows are committed on checkpoints: exactly once). The source
and the row map run with parallelism 1, so every key's steps reach the keyed
operator in order, whatever its parallelism.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pyflink.common import Encoder, Types, WatermarkStrategy
from pyflink.datastream import DataStream, KeyedStream, MapFunction, RuntimeContext, StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import FileSink, RollingPolicy
from pyflink.datastream.connectors.number_seq import NumberSequenceSource

from tflstm.flink import LSTMStepFunction
from tflstm.runtime import StreamingModel

ROOT = Path(__file__).resolve().parents[2]
FLOAT32_MODEL = ROOT / "android_assets" / "digits_step_float32.tflite"
INT8_MODEL = ROOT / "android_assets" / "digits_step_int8.tflite"
DEPTH = 8  # features per step of the digits models


def sensor_features(key_index: int, t: int) -> list[float]:
    """Sensor `key_index`'s features at step `t`: float32 values in [0, 1], deterministic."""
    return [float(np.float32(0.5 + 0.5 * math.sin(0.1 * (t + 1) * (j + 1) + key_index))) for j in range(DEPTH)]


class SensorRows(MapFunction):
    """n -> (sensor, t, features): record n is sensor `s{n % keys}`'s step `n // keys`."""

    def __init__(self, keys: int) -> None:
        self.keys = keys

    def map(self, n: int) -> tuple[str, int, list[float]]:
        t, key_index = divmod(n, self.keys)
        return f"s{key_index}", t, sensor_features(key_index, t)


def csv_line(key: str, record: tuple, y: np.ndarray) -> str:
    """`postprocess`: "sensor,t,y0,...,y9" with each float32 output written exactly (repr of its double)."""
    return ",".join([key, str(record[1]), *map(repr, y.tolist())])


def steps_where(period: int, phase: int) -> Callable[[str, tuple], bool]:
    """A `reset`/`end` hook: True for the rows whose step t has t % period == phase."""
    return lambda key, row: row[1] % period == phase


def even_steps_only(key: str, row: tuple, y: np.ndarray) -> str | None:
    """`postprocess`: the `csv_line` of even steps, nothing for odd ones."""
    return csv_line(key, row, y) if row[1] % 2 == 0 else None


def tuple_line(record: tuple) -> str:
    """A default record (key, y0, y1, ...) as "key,y0,y1,..." with the floats written exactly."""
    return ",".join([record[0], *map(repr, record[1:])])


class PauseAt(MapFunction):
    """Passes record numbers through, sleeping `seconds` before record `n` (idle keys, for state TTL)."""

    def __init__(self, n: int, seconds: float) -> None:
        self.n, self.seconds = n, seconds

    def map(self, n: int) -> int:
        if n == self.n:
            time.sleep(self.seconds)
        return n


class FailOnceAfterCheckpoint(MapFunction):
    """Passes record numbers; on the first attempt, raises once a checkpoint taken past record `after` completed.

    PyFlink's thread mode cannot tell attempts apart (`get_attempt_number()`
    raises), so files mark them: `failed` holds the record number the first
    attempt failed at, `resumed` the first one the restarted job read: at
    least `after` when the job resumed from a checkpoint (source position and
    keyed states restored) rather than from scratch. Checkpoints run one at a
    time (Flink's default) and `chk-<n>` folders appear when they start: when
    record `after` passes, the newest is `chk-<c>`; `chk-<c + 1>` starts later,
    its barrier behind record `after`, and `chk-<c + 2>` only once it completed.
    """

    def __init__(self, checkpoints: Path, marks: Path, after: int) -> None:
        self.checkpoints, self.marks, self.after = str(checkpoints), str(marks), after

    def open(self, runtime_context: RuntimeContext) -> None:
        self.restarted = Path(self.marks, "failed").exists()
        self.first = True
        self.fail_at_checkpoint = None

    def map(self, n: int) -> int:
        if self.restarted and self.first:
            Path(self.marks, "resumed").write_text(str(n))
        elif not self.restarted and n == self.after:
            self.fail_at_checkpoint = self.newest_checkpoint() + 2
        elif self.fail_at_checkpoint and n % 100 == 0 and self.newest_checkpoint() >= self.fail_at_checkpoint:
            Path(self.marks, "failed").write_text(str(n))
            raise RuntimeError(f"deliberate failure at record {n}, after a checkpoint taken past record {self.after}")
        self.first = False
        return n

    def newest_checkpoint(self) -> int:
        return max((int(path.name[len("chk-"):]) for path in Path(self.checkpoints).glob("*/chk-*")), default=0)


def sensor_rows(
    env: StreamExecutionEnvironment, *, keys: int, steps: int, before_step: MapFunction | None = None
) -> KeyedStream:
    """The test rows (see the module docstring) keyed by sensor; `before_step` maps the record numbers first."""
    source = NumberSequenceSource(0, keys * steps - 1)
    numbers = env.from_source(source, WatermarkStrategy.no_watermarks(), "steps").set_parallelism(1)
    if before_step is not None:
        numbers = numbers.map(before_step, output_type=Types.LONG()).set_parallelism(1)
    rows = numbers.map(SensorRows(keys)).set_parallelism(1)
    return rows.key_by(lambda row: row[0], key_type=Types.STRING())


def write_lines(lines: DataStream, out_dir: Path) -> None:
    """Sinks text lines into `out_dir`, committed at each checkpoint and at the end of the job."""
    sink = FileSink.for_row_format(str(out_dir), Encoder.simple_string_encoder())
    lines.sink_to(sink.with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy()).build())


def read_lines(out_dir: Path) -> list[str]:
    """The committed lines of a FileSink folder (in-progress and pending files are hidden: `.part-*`)."""
    return [line for path in sorted(Path(out_dir).rglob("part-*")) for line in path.read_text().splitlines()]


def outputs_by_step(lines: list[str]) -> dict[tuple[str, int], np.ndarray]:
    """CSV lines -> (sensor, t) -> float32 outputs; AssertionError on a duplicated step."""
    steps = [(line.split(",")[0], int(line.split(",")[1])) for line in lines]
    duplicated = [step for step, count in Counter(steps).items() if count > 1]
    assert not duplicated, f"{len(duplicated)} steps were emitted twice, e.g. {duplicated[:3]}"
    return {step: np.array(line.split(",")[2:], np.float64).astype(np.float32) for step, line in zip(steps, lines)}


def serial_replay(
    model: Path, *, keys: int, steps: int, zero_at: Callable[[int], bool] = lambda t: False
) -> dict[tuple[str, int], np.ndarray]:
    """Every sensor's outputs stepped in one process with `StreamingModel.run_step`: the expected outputs.

    `zero_at(t)`: True where a sensor's step t starts from the zero state.
    """
    stepper = StreamingModel(model)
    expected = {}
    for key_index in range(keys):
        state = stepper.zero_state()
        for t in range(steps):
            start = stepper.zero_state() if zero_at(t) else state
            y, state = stepper.run_step(np.array(sensor_features(key_index, t), np.float32), start)
            expected[f"s{key_index}", t] = y
    return expected


def max_error(got: dict[tuple[str, int], np.ndarray], expected: dict[tuple[str, int], np.ndarray]) -> float:
    """Largest absolute difference over the steps both hold."""
    return max(float(np.max(np.abs(got[step] - expected[step]))) for step in expected.keys() & got.keys())
