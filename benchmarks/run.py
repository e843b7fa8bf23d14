"""Benchmarks streaming an LSTM: tflstm against the ways people do it today.

Measures, in one run and after warm-up, per-step latency (median, p90, p99),
stream-steps per second, model file size, resident memory added, and the max
abs error against TensorFlow's float32 outputs, for:

  bare_invoke            the step model with the state left inside (the floor)
  tflstm_step            StreamingModel.step (explicit state, inputs checked for NaN/Inf)
  tflstm_step_unchecked  the same with allow_nonfinite=True (what the check costs)
  tflstm_streams_64      64 streams of one model, stepped round-robin
  tflstm_step_many_N     step_many on a model converted with batch N
  tflstm_chunk_K         StreamingModel.step on a chunk model (K time steps per call)
  peers                  NumPy step, unfused TFLite WHILE model with state I/O,
                         sliding windows (W=7, 32), Keras 3 / tf-keras stateful,
                         ONNX Runtime LSTM (benchmarks.peers)

Ratios are of medians measured alternately in blocks with their baseline. Writes
results.json, results.md and latency_*.png into --out and prints the table.
Exits non-zero if a method produced no figures (other than a noted skip) or
missed its error tolerance; speed goals are reported, not asserted.

Examples:

    python -m benchmarks.run --suite=quick --out=build/bench       # CI, ~2 min
    python -m benchmarks.run --suite=full --out=build/bench-full   # S, M, L; 1 and 2 threads
    # on a device with only the runtime (numpy + ai-edge-litert or tflite-runtime):
    python -m benchmarks.run --suite=quick --models_dir=build/bench/models --out=out
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from absl import flags

from benchmarks import methods
from benchmarks.models import SIZES, ModelFiles
from benchmarks.report import Row, plot, table
from benchmarks.timing import measure, measure_alternating, rss_kib
from tflstm.cli import absl_app
from tflstm.format import TOLERANCES
from tflstm.runtime.executor import hot_path_name

_SUITE = flags.DEFINE_enum("suite", "quick", ["quick", "full"], "quick: S only, short runs (CI); full: S, M, L.")
_OUT = flags.DEFINE_string("out", "build/bench", "Output folder.")
_MODELS_DIR = flags.DEFINE_string("models_dir", None, "Use these prebuilt models (no TensorFlow needed).")
_SIZES = flags.DEFINE_list("sizes", None, f"Model sizes, of {','.join(SIZES)} (default: S for quick, all for full).")
_BACKEND = flags.DEFINE_enum("backend", "auto", ["auto", "litert", "tflite_runtime", "tf"], "Interpreter backend.")
_EMULATED = flags.DEFINE_bool("emulated", False, "Under emulation: show ratios, errors and sizes, not times.")
_PEERS = flags.DEFINE_bool("peers", True, "Also run the peer methods (need TensorFlow, tf-keras, onnxruntime).")
flags.register_validator("sizes", lambda v: v is None or (bool(v) and set(v) <= set(SIZES)),
                         message=f"--sizes takes a comma-separated list of {', '.join(SIZES)}")

log = logging.getLogger("benchmarks")

SUITES = {
    # steps timed per method and size, warm-up, threads, quantizations, step_many batches
    "quick": {"steps": {"S": 600, "M": 300, "L": 60}, "warmup": 50, "threads": (1,),
              "quantizations": ("float32", "dynamic", "int8"), "batches": (64,), "chunks": (8,)},
    "full": {"steps": {"S": 6000, "M": 3000, "L": 400}, "warmup": 200, "threads": (1, 2),
             "quantizations": ("float32", "float16", "dynamic", "int8"), "batches": (8, 64, 256), "chunks": (8,)},
}
STREAMS = 64
CHECK_STEPS = 24
SLOW_PEERS = ("keras3_stateful", "tfkeras_stateful")


def _flat(y) -> np.ndarray:
    return np.asarray(y, dtype=np.float32).reshape(-1)


def single_stream_error(
    step: Callable[[int], object], reset: Callable[[], None], y: np.ndarray, steps_per_call: int = 1
) -> float:
    """Max error of one stream over the first CHECK_STEPS steps of reference stream 0.

    Call i of a chunk model returns the outputs of steps [i * k, (i + 1) * k).
    """
    reset()
    k = steps_per_call
    return float(max(
        np.abs(_flat(step(i)) - y[0, i * k : (i + 1) * k].reshape(-1)).max() for i in range(CHECK_STEPS // k)
    ))


def streams_error(method: methods.TflstmStreams, y: np.ndarray) -> float:
    method.reset()
    n = method.count
    return float(max(np.abs(_flat(method.step(i)) - y[i % n, i // n]).max() for i in range(n * CHECK_STEPS)))


def step_many_error(method: methods.TflstmStepMany, y: np.ndarray) -> float:
    method.reset()
    worst = 0.0
    for t in range(CHECK_STEPS):
        for key, out in method.step(t).items():
            if key < len(y):
                worst = max(worst, float(np.abs(_flat(out) - y[key, t]).max()))
    return worst


def timed_row(row: Row, latency, baseline_latency=None, baseline: str | None = None) -> Row:
    row.median_us, row.p90_us, row.p99_us = latency.median_us, latency.p90_us, latency.p99_us
    row.steps_per_second = latency.steps_per_second * row.streams
    if baseline_latency is not None:
        row.baseline, row.ratio = baseline, latency.median_us / baseline_latency.median_us
    return row


def limit_blas_threads(threads: int) -> str:
    """Caps NumPy's BLAS threads (the NumPy peer) at `threads`, as the interpreters are."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "BLAS threads not capped (pip install threadpoolctl)"
    threadpool_limits(limits=threads, user_api="blas")
    return ""


def bench_size(size: str, files: ModelFiles, suite: dict, threads: int, weights: dict | None) -> list[Row]:
    """Every method on one model size and thread count."""
    backend = _BACKEND.value
    blas_note = limit_blas_threads(threads)
    with np.load(files.reference) as npz:
        x, y = npz["x"], npz["y"]
    steps, warmup = suite["steps"][size], suite["warmup"]
    rows: list[Row] = []
    for quantize in suite["quantizations"]:
        path = files.step(quantize)
        if not path.exists():
            continue
        size_bytes = path.stat().st_size
        before = rss_kib()
        bare = methods.BareInvoke(path, x[0], backend, threads)
        bare_error = single_stream_error(bare.step, bare.reset, y)
        ours = methods.TflstmStep(path, x[0], backend, threads)
        ours_error = single_stream_error(ours.step, ours.reset, y)
        ours_latency, bare_latency = measure_alternating(ours.step, bare.step, steps, warmup)
        rows.append(timed_row(Row("bare_invoke", size, quantize, threads, file_bytes=size_bytes,
                                  max_abs_error=bare_error, tolerance=TOLERANCES[quantize]), bare_latency))
        rows.append(timed_row(
            Row(ours.name, size, quantize, threads, file_bytes=size_bytes, max_abs_error=ours_error,
                tolerance=TOLERANCES[quantize], rss_growth_kib=rss_kib() - before),
            ours_latency, bare_latency, "bare_invoke"))
        log.info("%s %-8s step %.2f us, bare %.2f us (x%.3f), error %.1e", size, quantize,
                 ours_latency.median_us, bare_latency.median_us, rows[-1].ratio, ours_error)
        if quantize == "float32":
            unchecked = methods.TflstmStep(path, x[0], backend, threads, check_inputs=False)
            latency, base = measure_alternating(unchecked.step, bare.step, steps, warmup)
            rows.append(timed_row(
                Row(unchecked.name, size, quantize, threads, max_abs_error=single_stream_error(unchecked.step, unchecked.reset, y),
                    tolerance=TOLERANCES[quantize], note="allow_nonfinite=True: no NaN/Inf check"),
                latency, base, "bare_invoke"))
            before = rss_kib()
            streams = methods.TflstmStreams(path, x[:STREAMS], backend, threads)
            error = streams_error(streams, y)
            latency, base = measure_alternating(streams.step, bare.step, steps, warmup)
            rows.append(timed_row(
                Row(streams.name, size, quantize, threads, max_abs_error=error, tolerance=TOLERANCES[quantize],
                    rss_growth_kib=rss_kib() - before,
                    note=f"{streams.model.streams_mode} mode, {streams.model.interpreter_streams} own interpreters; "
                         f"RSS is for all {STREAMS} streams"),
                latency, base, "bare_invoke"))
            log.info("%s %d streams round-robin %.2f us per stream-step (x%.3f of bare)", size, STREAMS,
                     latency.median_us, rows[-1].ratio)
    for k in suite["chunks"]:
        path = files.chunk("float32", k)
        if not path.exists():
            continue
        chunk = methods.TflstmStep(path, x[0], backend, threads)
        error = single_stream_error(chunk.step, chunk.reset, y, k)
        latency = measure(chunk.step, max(20, steps // k * 4), max(5, warmup // 10))
        rows.append(timed_row(Row(chunk.name, size, "float32", threads, streams=k, file_bytes=path.stat().st_size,
                                  max_abs_error=error, tolerance=TOLERANCES["float32"],
                                  note=f"{k} time steps of one stream per call"), latency))
        log.info("%s chunk %d: %.1f us per call, %.0f stream-steps/s", size, k, latency.median_us,
                 rows[-1].steps_per_second)
    for batch in suite["batches"]:
        path = files.step("float32", batch)
        if not path.exists():
            continue
        many = methods.TflstmStepMany(path, x, backend, threads)
        error = step_many_error(many, y)
        latency = measure(many.step, max(20, steps // batch * 4), max(5, warmup // 10))
        rows.append(timed_row(Row(many.name, size, "float32", threads, streams=batch,
                                  file_bytes=path.stat().st_size, max_abs_error=error, tolerance=TOLERANCES["float32"]), latency))
        log.info("%s step_many %d: %.1f us per call, %.0f stream-steps/s", size, batch, latency.median_us,
                 rows[-1].steps_per_second)
    if weights is not None:
        peer_rows = bench_peers(size, files, weights, threads, x, y, steps, warmup)
        for row in peer_rows:
            if row.method == "numpy_step" and blas_note:
                row.note = blas_note
        rows.extend(peer_rows)
    return rows


def bench_peers(size: str, files: ModelFiles, weights: dict, threads: int, x: np.ndarray, y: np.ndarray,
                steps: int, warmup: int) -> list[Row]:
    """The peer methods, each alternated with tflstm_step (float32)."""
    from benchmarks import peers

    ours = methods.TflstmStep(files.step("float32"), x[0], _BACKEND.value, threads)
    rows = []
    for name in peers.PEERS:
        before = rss_kib()
        try:
            peer = peers.make(name, weights, threads=threads)
        except ImportError as err:
            rows.append(Row(name, size, "float32", threads, note=f"skipped: {err}"))
            log.info("%s %s skipped: %s", size, name, err)
            continue
        samples = x[0]

        def step(i: int, peer=peer, samples=samples):
            return peer.step(samples[i % len(samples)])

        error = single_stream_error(step, peer.reset, y)
        window = getattr(peer, "matches_stream_after", None)
        slow = name.startswith(SLOW_PEERS)
        count = max(30, steps // (20 if slow else 1))
        latency, base = measure_alternating(step, ours.step, count, min(warmup, 10) if slow else warmup)
        rows.append(timed_row(
            Row(name, size, "float32", threads, max_abs_error=error,
                tolerance=None if window else TOLERANCES["float32"], rss_growth_kib=rss_kib() - before,
                note=f"approximation: sees only the last {window} samples" if window else ""),
            latency, base, "tflstm_step"))
        log.info("%s %-34s %.1f us (x%.2f of tflstm_step), error %.1e", size, name, latency.median_us,
                 rows[-1].ratio, error)
    return rows


def goals(rows: list[Row]) -> list[str]:
    """The issue's goals, each with its measured figure and met / not met."""
    def find(method: str, size: str, quantize: str = "float32", threads: int = 1) -> Row | None:
        return next((r for r in rows if (r.method, r.size, r.quantization, r.threads) == (method, size, quantize, threads)
                     and r.median_us), None)

    lines = []

    def check(text: str, value: float | None, ok: Callable[[float], bool]) -> None:
        if value is None:
            lines.append(f"- {text}: not measured in this run")
        else:
            lines.append(f"- {text}: {value:.3f} -> {'met' if ok(value) else 'NOT met'}")

    for size, limit in (("S", 1.15), ("M", 1.05), ("L", 1.01)):
        for quantize in ("float32", "dynamic"):
            row = find("tflstm_step", size, quantize)
            check(f"tflstm_step / bare_invoke, {size} {quantize} (<= {limit})", row and row.ratio, lambda v, l=limit: v <= l)
    for size in ("S", "M"):
        row = find(f"tflstm_streams_{STREAMS}", size)
        check(f"{STREAMS} streams round-robin / bare_invoke, {size} (<= 1.15)", row and row.ratio, lambda v: v <= 1.15)
    for peer, targets in (("onnxruntime_lstm", {"S": 3.5, "M": 1.35}), ("tfkeras_unfused_state_io", {"S": 3.5, "M": 1.2}),
                          ("keras3_stateful_predict_on_batch", {"S": 100, "M": 100})):
        for size, target in targets.items():
            row = find(peer, size)
            check(f"{peer} / tflstm_step, {size} (>= {target})", row and row.ratio, lambda v, t=target: v >= t)
    for size in ("S", "M", "L"):
        many, one_by_one = find(f"tflstm_step_many_{STREAMS}", size), find(f"tflstm_streams_{STREAMS}", size)
        value = many.steps_per_second / one_by_one.steps_per_second if many and one_by_one else None
        check(f"step_many {STREAMS} / {STREAMS} streams one by one, throughput, {size} (>= 10)", value, lambda v: v >= 10)
    for size in ("M", "L"):
        base = find("tflstm_step", size)
        for quantize in ("dynamic", "int8"):
            row = find("tflstm_step", size, quantize)
            value = row.file_bytes / base.file_bytes if row and base else None
            check(f"{quantize} file / float32 file, {size} (<= 0.26)", value, lambda v: v <= 0.26)
    base, dynamic = find("tflstm_step", "L"), find("tflstm_step", "L", "dynamic")
    check("dynamic step / float32 step, L (<= 0.35)",
          dynamic.median_us / base.median_us if base and dynamic else None, lambda v: v <= 0.35)
    return lines


def main(argv: list[str]) -> int:
    del argv
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    suite = SUITES[_SUITE.value]
    sizes = _SIZES.value or (["S"] if _SUITE.value == "quick" else list(SIZES))
    out = Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows: list[Row] = []
    for size in sizes:
        if _MODELS_DIR.value:
            files, weights = ModelFiles(Path(_MODELS_DIR.value) / size), None
        else:
            from benchmarks import models

            log.info("building model %s", size)
            files = models.build(
                size, out / "models", suite["quantizations"], suite["batches"], suite["chunks"], STREAMS, CHECK_STEPS
            )
            weights = models.peer_weights(files) if _PEERS.value else None
        for threads in suite["threads"]:
            rows.extend(bench_size(size, files, suite, threads, weights))
    machine = {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
               "python": platform.python_version(), "backend": _BACKEND.value,
               "hot_path": hot_path_name(),
               "date": time.strftime("%Y-%m-%d"), "seconds": round(time.monotonic() - started, 1),
               "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    goal_lines = goals(rows)
    (out / "results.json").write_text(json.dumps(
        {"machine": machine, "suite": _SUITE.value, "emulated": _EMULATED.value, "rows": [dataclasses.asdict(r) for r in rows], "goals": goal_lines},
        indent=1) + "\n")
    if _EMULATED.value:
        goal_lines = [line for line in goal_lines if "file /" in line or "/ bare_invoke" in line]
    markdown = table(rows, relative_only=_EMULATED.value) + "\n\nGoals (ratios of medians measured alternately in this run):\n" + "\n".join(goal_lines)
    (out / "results.md").write_text(f"Benchmark on {machine}\n\n{markdown}\n")
    plots = [] if _EMULATED.value else plot(rows, out)
    print(markdown)
    print(f"\nwrote {out / 'results.json'}, {out / 'results.md'} and {len(plots)} plot(s) in {machine['seconds']} s")
    failed = [f"{r.size} {r.method} [{r.quantization}]" for r in rows if r.failed]
    if failed:
        print(f"FAILED (no figures or error above tolerance): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    absl_app.run(main)
