"""A long run: many steps over switching streams, with periodic save/load; memory and speed must hold.

Usage: python tests/reliability/soak.py --steps N [--streams K] MODEL.tflite

Steps K keyed streams of one model round-robin (swap mode) plus the model's own
state; every 1,000 steps one stream's state is saved to a file and loaded into
another stream, and one stream is removed and created again. Checks the outputs
of a tracked stream against a serial replay, and reports resident memory growth
(after a warm-up) and the median step time of the first and last tenth.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tflstm.runtime import StreamingModel


def rss_kib() -> float:
    """Resident memory of this process (Linux), KiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--max_growth_kib", type=float, default=5 * 1024)
    args = parser.parse_args(argv)
    model = StreamingModel(args.model, streams="swap")
    replay = StreamingModel(args.model, streams="swap")
    inputs = np.random.default_rng(0).normal(size=(97, model.input_depth)).astype(np.float32)
    keys = list(range(args.streams))
    tracked, mismatches = 0, 0
    times = np.full(args.steps, np.nan)  # written now, so its pages count before the baseline
    warm = min(2_000, args.steps // 10)
    baseline = 0.0
    with tempfile.TemporaryDirectory() as folder:
        state_file = Path(folder) / "s.state"
        for step in range(args.steps):
            key = keys[step % len(keys)]
            x = inputs[step % len(inputs)]
            start = time.perf_counter()
            y = model.stream(key).step(x)
            times[step] = time.perf_counter() - start
            if key == tracked:
                mismatches += not np.array_equal(y, replay.step(x))
            if step % 7 == 0:
                model.step(x)
            if step % 1_000 == 999:
                source, target = keys[(step // 1_000) % len(keys)], keys[(step // 1_000 + 1) % len(keys)]
                model.stream(source).save_state(state_file)
                model.stream(target).load_state(state_file)
                if target == tracked:
                    replay.state = model.stream(source).state  # what was saved, not what was loaded
                removed = keys[(step // 1_000 + 3) % len(keys)]
                if removed != tracked:
                    model.remove_stream(removed)
            if step == warm:
                baseline = rss_kib()
    tenth = max(1, args.steps // 10)
    report = {
        "steps": args.steps, "streams": args.streams, "mismatches": mismatches,
        "rss_growth_kib": round(rss_kib() - baseline, 1),
        "first_tenth_median_us": round(float(np.median(times[:tenth])) * 1e6, 2),
        "last_tenth_median_us": round(float(np.median(times[-tenth:])) * 1e6, 2),
    }
    print(json.dumps(report))
    return 1 if mismatches or report["rss_growth_kib"] > args.max_growth_kib else 0


if __name__ == "__main__":
    sys.exit(main())
