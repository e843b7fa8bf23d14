"""Apache Flink: LSTMStepFunction's records/s on the local mini-cluster against a plain `run_step` loop.

Runs in .venv-flink (`make flink-bench`). The job: `NumberSequenceSource`
(one reader) -> `key_by(n % keys)` -> `LSTMStepFunction` (the digits float32
model, 1,536 B of state per key, features from a small table) -> one short
line per record -> `FileSink`. Each configuration runs twice, with a small and
a large record count; records/s is the difference of their record counts over
the difference of their wall times, which cancels the mini-cluster's start-up.
The plain loops (`benchmarks.keyed_loops`) step the same model in this
process; the `run_step` loop is timed again just before each pair, and each
ratio is to that figure, because the machine's speed drifts. `--repeat N`
runs N pairs per configuration and reports the medians. Bytes per
key are the size on disk of the large run's last completed checkpoint (taken
every second) over the keys it holds.

`--batched_models` adds the keyed loops of models of the digits network
converted with batch 1, 8, 64 (after `make demo`, in .venv:
`python -m converters.tflstm_convert --checkpoint_dir=demo_out/checkpoint
--out_dir=DIR --quantize=float32 --step_batch_sizes=1,8,64`): what an operator
stepping N keys per invoke could gain.

Examples:

    python -m benchmarks.flink_bench --out build/flink-bench \\
        --batched_models DIR/step_float32.tflite DIR/step_b8_float32.tflite DIR/step_b64_float32.tflite
    python -m benchmarks.flink_bench --quick --out build/flink-bench-quick     # a smoke run, not figures
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import threading
import time
from pathlib import Path

import numpy as np
from pyflink.common import Encoder, Types, WatermarkStrategy
from pyflink.datastream.connectors.file_system import FileSink, RollingPolicy
from pyflink.datastream.connectors.number_seq import NumberSequenceSource

from benchmarks.keyed_loops import batched_rates, loop_rates
from tflstm.flink import LSTMStepFunction, local_environment

MODEL = Path(__file__).resolve().parents[1] / "android_assets" / "digits_step_float32.tflite"
FEATURES = np.random.default_rng(0).random((97, 8), dtype=np.float32)
"""Input rows, record n takes row n % 97: the features cost nothing next to the step."""


@dataclasses.dataclass(frozen=True)
class Config:
    """One Flink configuration to time."""

    execution_mode: str
    parallelism: int
    state_backend: str
    keys: int

    @property
    def name(self) -> str:
        return f"{self.execution_mode} p{self.parallelism} {self.state_backend} {self.keys:,} keys"

    @property
    def slug(self) -> str:
        return f"{self.execution_mode}-p{self.parallelism}-{self.state_backend}-{self.keys}"


CONFIGS = (
    Config("thread", 1, "hashmap", 1_000),
    Config("thread", 2, "hashmap", 1_000),
    Config("process", 1, "hashmap", 1_000),
    Config("process", 2, "hashmap", 1_000),
    Config("thread", 1, "hashmap", 20_000),
    Config("thread", 1, "rocksdb", 20_000),
)


def features(key: int, n: int) -> np.ndarray:
    """`preprocess`: record n's features."""
    return FEATURES[n % len(FEATURES)]


def brief_line(key: int, n: int, y: np.ndarray) -> str:
    """`postprocess`: "key,n,class" per record."""
    return f"{key},{n},{int(np.argmax(y))}"


class CheckpointWatcher(threading.Thread):
    """Weighs the newest completed checkpoint while a job runs (Flink deletes them when the job finishes).

    `bytes`: the files of the newest `chk-<n>` holding a `_metadata` file, plus
    the `shared` files of incremental (RocksDB) checkpoints, at the last look.
    """

    def __init__(self, checkpoints: Path, every_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.checkpoints, self.every_s, self.bytes = checkpoints, every_s, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            try:
                completed = [path.parent for path in self.checkpoints.glob("*/chk-*/_metadata")]
                if completed:
                    newest = max(completed, key=lambda path: int(path.name[len("chk-"):]))
                    files = [*newest.rglob("*"), *newest.parent.joinpath("shared").rglob("*")]
                    self.bytes = sum(path.stat().st_size for path in files if path.is_file())
            except FileNotFoundError:  # a checkpoint subsumed while we looked: look again
                continue

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.bytes


def run_job(config: Config, records: int, work: Path) -> tuple[float, int, int]:
    """Runs the benchmark job over `records` records in a new folder `work`.

    Returns:
        (wall seconds, lines committed, bytes of the last checkpoint seen).
    """
    env = local_environment(work, execution_mode=config.execution_mode, state_backend=config.state_backend,
                            parallelism=config.parallelism, checkpoint_interval_ms=1000)
    step = LSTMStepFunction(MODEL, preprocess=features, postprocess=brief_line)
    numbers = env.from_source(NumberSequenceSource(0, records - 1), WatermarkStrategy.no_watermarks(), "numbers")
    keys = config.keys
    lines = numbers.set_parallelism(1).key_by(lambda n: n % keys, key_type=Types.LONG()).process(
        step, output_type=Types.STRING())
    sink = FileSink.for_row_format(str(work / "out"), Encoder.simple_string_encoder())
    lines.sink_to(sink.with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy()).build())
    watcher = CheckpointWatcher(work / "checkpoints")
    watcher.start()
    started = time.perf_counter()
    env.execute(f"tflstm bench {config.name}")
    seconds = time.perf_counter() - started
    committed = sum(len(path.read_text().splitlines()) for path in (work / "out").rglob("part-*"))
    return seconds, committed, watcher.stop()


def time_flink(config: Config, small: int, large: int, jobs: Path, repeat: int, loop_steps: int) -> dict:
    """Median records/s over `repeat` (small, large) pairs, each after a `run_step` loop that gauges the machine.

    Bytes per key come from the last large run's newest checkpoint.
    """
    rates, ratios, runs = [], [], []
    for round_ in range(repeat):
        loop = loop_rates(MODEL, 1, loop_steps)["run_step loop"]
        seconds = {}
        for records in (small, large):
            work = jobs / f"{config.slug}-{round_}-{records}"
            seconds[records], committed, checkpoint_bytes = run_job(config, records, work)
            if committed != records:
                raise RuntimeError(f"{config.name}: {committed} lines committed for {records} records")
        extra = seconds[large] - seconds[small]
        if extra > 0:  # else start-up noise won: no figure from this pair
            rates.append((large - small) / extra)
            ratios.append(rates[-1] / loop)
        runs.append({"seconds": seconds, "run_step_loop": loop})
    return {
        **dataclasses.asdict(config), "config": config.name, "runs": runs,
        "records_per_s": float(np.median(rates)) if rates else None,
        "vs_run_step_loop": float(np.median(ratios)) if ratios else None,
        "records_per_s_with_start_up": large / seconds[large],
        "checkpoint_bytes_per_key": checkpoint_bytes / min(config.keys, large),
    }


def markdown(results: dict) -> str:
    lines = ["| method | records/s | vs the run_step loop | checkpoint B/key |", "|---|---:|---:|---:|"]
    plain = results["plain"]["run_step loop"]
    for name, rate in results["plain"].items():
        lines.append(f"| plain loop: {name} | {rate:,.0f} | {rate / plain:.2f}x | |")
    for row in results["flink"]:
        rate, loops = row["records_per_s"], [run["run_step_loop"] for run in row["runs"]]
        shown = f"{rate:,.0f}" if rate else f"n/a ({row['records_per_s_with_start_up']:,.0f} with start-up)"
        ratio = f"{row['vs_run_step_loop']:.2f}x (loops: {', '.join(f'{v:,.0f}' for v in loops)})" if rate else ""
        lines.append(f"| Flink {row['config']} | {shown} | {ratio} | {row['checkpoint_bytes_per_key']:,.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/flink-bench"))
    parser.add_argument("--quick", action="store_true", help="small runs: a smoke test, not figures")
    parser.add_argument("--batched_models", type=Path, nargs="*", default=[],
                        help="step models of the digits network with batch 1, then N, ...: keyed loops per batch")
    parser.add_argument("--repeat", type=int, default=1, help="(small, large) pairs per configuration: the median")
    parser.add_argument("--configs", nargs="*", choices=[config.slug for config in CONFIGS],
                        default=[config.slug for config in CONFIGS], help="Flink configurations to time")
    args = parser.parse_args()
    shutil.rmtree(args.out / "jobs", ignore_errors=True)  # before the JVM starts: it keeps its files there
    args.out.mkdir(parents=True, exist_ok=True)
    thread_runs, process_runs, plain_steps = ((1_000, 3_000), (1_000, 3_000), 2_000) if args.quick else (
        (20_000, 120_000), (5_000, 30_000), 100_000)

    plain = loop_rates(MODEL, 1_000, plain_steps)
    if args.batched_models:
        plain.update(batched_rates(args.batched_models, 2_048, plain_steps))
    results = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
               "quick": args.quick, "plain": plain, "flink": []}
    run_job(CONFIGS[0], 100, args.out / "jobs" / "warm-up")  # starts the JVM, which no timed run should pay for
    for config in (config for config in CONFIGS if config.slug in args.configs):
        small, large = thread_runs if config.execution_mode == "thread" else process_runs
        row = time_flink(config, small, large, args.out / "jobs", args.repeat, plain_steps // 4)
        results["flink"].append(row)
        print(f"{config.name}: {row['records_per_s'] or float('nan'):,.0f} records/s", flush=True)

    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    (args.out / "results.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
