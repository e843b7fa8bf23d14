"""Digits streamed row by row from many sensors, classified by an LSTM inside an Apache Flink job.

Each sensor sends 8x8 images of handwritten digits one row per record (8
pixels / 16; the four digits of `android_assets/manifest.json`). The job keys
the rows by sensor and steps the digits LSTM (8 -> 128 -> 64 -> 10) once per
row with `tflstm.flink.LSTMStepFunction`, each sensor's LSTM state in Flink's
keyed state: row 0 of an image starts from the zero state (`reset`), its state
is freed after row 7 (`end`), which emits one line per image: sensor, image,
true label, predicted digit, probability.

Replay-safe end to end: `NumberSequenceSource` keeps its position in the
checkpoints, the record -> row mapping is deterministic, keyed states are
checkpointed, and the `FileSink` commits its files on checkpoints, so after a
failure the job resumes from its last checkpoint with no line lost or doubled.

Run it on a local mini-cluster (logs, temporary files and checkpoints under --out):

    make flink-example
    .venv-flink/bin/python examples/flink_digits_job.py --out build/flink-example \\
        --sensors 1000 --images 4 --mode thread --state-backend rocksdb --parallelism 2

On a cluster, call `build_job` on the cluster's environment (its state backend
and checkpoint storage come from the cluster's configuration), ship tflstm with
the job (`env.add_python_file`, or a virtualenv archive with
`env.add_python_archive` + `env.set_python_executable`) and give the model as
bytes (`LSTMStepFunction(Path(model).read_bytes(), ...)`) or a path present on
every TaskManager.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
from pyflink.common import Encoder, Types, WatermarkStrategy
from pyflink.datastream import MapFunction, StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import BucketAssigner, FileSink, RollingPolicy
from pyflink.datastream.connectors.number_seq import NumberSequenceSource

from tflstm.flink import LSTMStepFunction, local_environment
from tflstm.flink.environment import EXECUTION_MODES, STATE_BACKENDS

ASSETS = Path(__file__).resolve().parents[1] / "android_assets"
ROWS = 8  # rows per image: time steps per sequence


def load_digits(manifest: Path) -> tuple[list[list[list[float]]], list[int]]:
    """The digit images ([image][row][pixel / 16]) and labels that the manifest's check holds."""
    check = json.loads(manifest.read_text())["check"]
    return check["x"], check["labels"]


class SensorRows(MapFunction):
    """Record n -> (sensor, image, label, row, pixels): sensor `n % sensors` sends one row per record.

    Sensor s's image i is digit (s + i) % len(digits); rows go in order, 0 to 7.
    """

    def __init__(self, sensors: int, digits: list[list[list[float]]], labels: list[int]) -> None:
        self.sensors, self.digits, self.labels = sensors, digits, labels

    def map(self, n: int) -> tuple[str, int, int, int, list[float]]:
        step, sensor = divmod(n, self.sensors)
        image, row = divmod(step, ROWS)
        digit = (sensor + image) % len(self.digits)
        return f"sensor-{sensor}", image, self.labels[digit], row, self.digits[digit][row]


def starts_image(sensor: str, record: tuple) -> bool:
    """`reset`: row 0 starts an image from the zero state."""
    return record[3] == 0


def ends_image(sensor: str, record: tuple) -> bool:
    """`end`: after row 7 the sensor's state is freed until its next image."""
    return record[3] == ROWS - 1


def classification(sensor: str, record: tuple, probabilities: np.ndarray) -> str | None:
    """`postprocess`: "sensor,image,label,predicted,probability" after an image's last row, else nothing."""
    if record[3] != ROWS - 1:
        return None
    predicted = int(np.argmax(probabilities))
    return f"{sensor},{record[1]},{record[2]},{predicted},{probabilities[predicted]:.4f}"


def build_job(env: StreamExecutionEnvironment, model: Path, out_dir: Path, *, sensors: int, images: int) -> None:
    """Adds source -> rows -> key_by sensor -> LSTMStepFunction -> FileSink to `env`."""
    digits, labels = load_digits(ASSETS / "manifest.json")
    source = NumberSequenceSource(0, sensors * images * ROWS - 1)
    # One source reader and row mapper: every sensor's rows reach the LSTM in order.
    numbers = env.from_source(source, WatermarkStrategy.no_watermarks(), "record numbers").set_parallelism(1)
    rows = numbers.map(SensorRows(sensors, digits, labels)).set_parallelism(1)
    step = LSTMStepFunction(model, preprocess=lambda sensor, record: record[4], postprocess=classification,
                            reset=starts_image, end=ends_image)
    lines = rows.key_by(lambda record: record[0], key_type=Types.STRING()).process(step, output_type=Types.STRING())
    sink = (
        FileSink.for_row_format(str(out_dir), Encoder.simple_string_encoder())
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner())  # no date folders
        .with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy())  # commit on checkpoints
        .build()
    )
    lines.sink_to(sink)


def committed_lines(out_dir: Path) -> list[str]:
    """The FileSink's committed lines (in-progress files are hidden: `.part-*`)."""
    return [line for path in sorted(out_dir.glob("part-*")) for line in path.read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/flink-example"), help="output folder (emptied)")
    parser.add_argument("--model", type=Path, default=ASSETS / "digits_step_float32.tflite")
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--images", type=int, default=4, help="images per sensor")
    parser.add_argument("--mode", choices=EXECUTION_MODES, default="thread")
    parser.add_argument("--state-backend", choices=STATE_BACKENDS, default="hashmap")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--checkpoint-ms", type=int, default=1000)
    args = parser.parse_args()
    if args.sensors < 1 or args.images < 1:
        parser.error(f"--sensors and --images must be >= 1, got {args.sensors} and {args.images}")

    lines_dir = args.out / "lines"
    shutil.rmtree(lines_dir, ignore_errors=True)
    env = local_environment(args.out, execution_mode=args.mode, state_backend=args.state_backend,
                            parallelism=args.parallelism, checkpoint_interval_ms=args.checkpoint_ms,
                            restart_attempts=3)
    build_job(env, args.model, lines_dir, sensors=args.sensors, images=args.images)
    started = time.perf_counter()
    env.execute("tflstm digits")
    seconds = time.perf_counter() - started

    lines = committed_lines(lines_dir)
    images = Counter(tuple(line.split(",")[:2]) for line in lines)
    correct = sum(line.split(",")[2] == line.split(",")[3] for line in lines)
    records = args.sensors * args.images * ROWS
    print(f"{len(lines)} images classified ({len(images)} distinct, {args.sensors * args.images} expected), "
          f"{correct} correct; {records} records in {seconds:.1f} s including start-up; lines in {lines_dir}")


if __name__ == "__main__":
    main()
