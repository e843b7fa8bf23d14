"""Timing primitives: per-step latencies, alternated with a baseline, summarized.

Runtime-only (numpy), so the runner can time methods on a device.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from collections.abc import Callable, Sequence

import numpy as np


def rss_kib() -> float:
    """Resident memory of this process in KiB (Linux: /proc/self/statm); NaN elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 1024
    except OSError:
        return float("nan")


StepFunction = Callable[[int], object]
"""Runs step number `i` (the function picks its own input)."""


@dataclasses.dataclass(frozen=True)
class Latency:
    """Per-step latency summary in microseconds.

    Attributes:
        median_us, p90_us, p99_us: percentiles of the per-step times.
        steps_per_second: 1e6 / mean per-step time.
        samples: number of timed steps.
    """

    median_us: float
    p90_us: float
    p99_us: float
    steps_per_second: float
    samples: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        """Summarizes per-step times given in seconds."""
        us = np.asarray(seconds) * 1e6
        return cls(
            median_us=float(np.median(us)), p90_us=float(np.percentile(us, 90)),
            p99_us=float(np.percentile(us, 99)), steps_per_second=float(1e6 / us.mean()),
            samples=len(us),
        )


def _time_block(step: StepFunction, start: int, count: int, out: list[float]) -> None:
    clock = time.perf_counter
    for i in range(start, start + count):
        begin = clock()
        step(i)
        out.append(clock() - begin)


def measure(step: StepFunction, steps: int, warmup: int) -> Latency:
    """Times `steps` calls of `step` after `warmup` untimed ones."""
    for i in range(warmup):
        step(i)
    seconds: list[float] = []
    _time_block(step, warmup, steps, seconds)
    return Latency.of(seconds)


def measure_alternating(
    step: StepFunction, baseline: StepFunction, steps: int, warmup: int, rounds: int = 20
) -> tuple[Latency, Latency]:
    """Times `step` and `baseline` in alternating blocks, so both see the same machine state.

    Returns:
        (latency of step, latency of baseline); compare their medians.
    """
    for i in range(warmup):
        step(i)
        baseline(i)
    block = max(1, steps // rounds)
    ours: list[float] = []
    theirs: list[float] = []
    for r in range(rounds):
        _time_block(baseline, warmup + r * block, block, theirs)
        _time_block(step, warmup + r * block, block, ours)
    return Latency.of(ours), Latency.of(theirs)
