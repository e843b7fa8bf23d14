"""Streaming recordings sample by sample as a device would, and how early they are recognized."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from tflstm.runtime import StreamingModel


class Streamed(NamedTuple):
    """What one model gave on a set of recordings.

    Attributes:
        outputs: float32 [recordings, time, classes], the class probabilities
            after each sample.
        step_us: float [recordings * time], wall time of each `step` call in µs.
    """

    outputs: np.ndarray
    step_us: np.ndarray


def stream(model: StreamingModel, x: np.ndarray) -> Streamed:
    """Steps each recording of raw x [recordings, time, features] from the zero state, timing each step."""
    outputs = np.empty((*x.shape[:2], model.metadata.outputs[0].shape[-1]), np.float32)
    times = np.empty(x.shape[:2])
    step, clock = model.step, time.perf_counter_ns
    for r, recording in enumerate(x):
        model.reset()
        for t, sample in enumerate(recording):
            begin = clock()
            outputs[r, t] = step(sample)
            times[r, t] = clock() - begin
    return Streamed(outputs, times.ravel() / 1e3)


def recognized_after(outputs: np.ndarray, label: int) -> int | None:
    """Samples seen when the most probable class becomes `label` and stays it to the end.

    Args:
        outputs: [time, classes] probabilities of one recording.
        label: its true class.

    Returns:
        1..time, or None if the last sample's answer is wrong.
    """
    wrong = np.flatnonzero(outputs.argmax(-1) != label)
    if len(wrong) == 0:
        return 1
    return None if wrong[-1] == len(outputs) - 1 else int(wrong[-1]) + 2


def table(streamed: Mapping[str, Streamed], y: np.ndarray, classes: Sequence[str], sample_rate_hz: float) -> str:
    """A Markdown table: per model, accuracy after the last sample, step latency, and per
    activity the median number of samples until it is recognized (and never-recognized count)."""
    header = ["model", "accuracy", "step median µs", "step p99 µs"]
    header += [f"{name}: recognized after" for name in classes]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for name, result in streamed.items():
        accuracy = float(np.mean(result.outputs[:, -1].argmax(-1) == y))
        median, p99 = np.percentile(result.step_us, [50, 99])
        cells = [name, f"{accuracy:.4f}", f"{median:.1f}", f"{p99:.1f}"]
        for label in range(len(classes)):
            found = [recognized_after(o, label) for o in result.outputs[y == label]]
            seen = [s for s in found if s is not None]
            never = len(found) - len(seen)
            cell = "-"
            if seen:
                samples = float(np.median(seen))
                cell = f"{samples:g} samples ({samples / sample_rate_hz:.2f} s)"
            cells.append(cell + (f", {never} of {len(found)} never" if never else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
