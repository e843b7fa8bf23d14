"""Times a step model on this machine: load time and per-step latency of `StreamingModel.step`.

Steps one stream with rows drawn at random around the model's normalization
(or N(0, 1)), after a warm-up, timing every step; prints median, p90, p99 and
steps per second. Needs only the runtime. The comparison with other ways of
streaming an LSTM (NumPy, ONNX Runtime, Keras, sliding windows) is the
repository's benchmark suite: `make bench`.

    tflstm bench demo_out/motions/models/step_float32.tflite --steps 5000
"""

from __future__ import annotations

import argparse

from tflstm.cli.common import positive_int
from tflstm.cli.run import BACKEND_CHOICES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers `tflstm bench`."""
    parser = subparsers.add_parser(
        "bench", help="time a step model's load and per-step latency here (runtime only)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="a fused-LSTM step model (.tflite)")
    parser.add_argument("--steps", type=positive_int, default=2000, help="timed steps (default: 2000)")
    parser.add_argument("--warmup", type=positive_int, default=200, help="untimed steps first (default: 200)")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, help="interpreter backend")
    parser.add_argument("--threads", type=positive_int, default=1, help="interpreter threads (default: 1)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Runs `tflstm bench`; returns the exit code."""
    import time

    import numpy as np

    from tflstm.runtime import StreamingModel

    started = time.perf_counter()
    model = StreamingModel(args.model, num_threads=args.threads, backend=args.backend)
    load_ms = (time.perf_counter() - started) * 1e3
    norm = model.metadata.normalization
    mean, std = (0.0, 1.0) if norm is None else (np.array(norm["mean"]), np.array(norm["std"]))
    shape = (args.warmup + args.steps, *([model.batch_size] if model.batch_size > 1 else []), model.input_depth)
    rows = (np.random.default_rng(0).normal(size=shape) * std + mean).astype(np.float32)
    step, clock = model.step, time.perf_counter_ns
    for row in rows[: args.warmup]:
        step(row)
    times = np.empty(args.steps)
    for k, row in enumerate(rows[args.warmup :]):
        begin = clock()
        step(row)
        times[k] = clock() - begin
    micros = times / 1e3
    median, p90, p99 = np.percentile(micros, [50, 90, 99])
    print(repr(model))
    print(f"load {load_ms:.1f} ms; {args.steps} steps after {args.warmup} warm-up, {args.threads} thread(s):")
    print(f"  median {median:.1f} us  p90 {p90:.1f} us  p99 {p99:.1f} us  "
          f"{model.batch_size * 1e6 / np.mean(micros):,.0f} stream-steps/s")
    return 0
