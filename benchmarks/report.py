"""Results of a benchmark run: rows, goals, the Markdown table and the plots."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path


@dataclasses.dataclass
class Row:
    """One method on one model, quantization and thread count.

    Attributes:
        method, size, quantization, threads: what ran.
        median_us, p90_us, p99_us: per-call latency (a call makes `streams` stream-steps).
        steps_per_second: stream-steps per second (calls/s x streams).
        streams: stream-steps per call: streams stepped together (step_many), or
            time steps of one stream (a chunk model).
        file_bytes: model file size (None for methods without one).
        max_abs_error: max |output - TensorFlow float32| over the checked steps.
        tolerance: the error this method must stay under (None: reported only).
        rss_growth_kib: resident memory the method added while built and run.
        baseline: method its ratio is against; ratio: its median / baseline's median,
            both measured alternately in this run.
        note: why a figure is missing or how to read it.
    """

    method: str
    size: str
    quantization: str
    threads: int
    median_us: float | None = None
    p90_us: float | None = None
    p99_us: float | None = None
    steps_per_second: float | None = None
    streams: int = 1
    file_bytes: int | None = None
    max_abs_error: float | None = None
    tolerance: float | None = None
    rss_growth_kib: float | None = None
    baseline: str | None = None
    ratio: float | None = None
    note: str = ""

    @property
    def failed(self) -> bool:
        """Produced no figures without a skip note, or missed its tolerance."""
        if self.median_us is None:
            return not self.note.startswith("skipped")
        return self.tolerance is not None and not (self.max_abs_error is not None and self.max_abs_error <= self.tolerance)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: Sequence[Row], relative_only: bool = False) -> str:
    """The Markdown table of all rows; `relative_only` blanks absolute times (emulation)."""
    if relative_only:
        rows = [dataclasses.replace(r, median_us=None, p90_us=None, p99_us=None, steps_per_second=None) for r in rows]
    lines = [
        "| size | method | quant | thr | median µs | p90 µs | p99 µs | stream-steps/s | ratio | vs | file KiB | max abs err | RSS +KiB | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.size} | {r.method} | {r.quantization} | {r.threads} | {_fmt(r.median_us, '.1f')} "
            f"| {_fmt(r.p90_us, '.1f')} | {_fmt(r.p99_us, '.1f')} | {_fmt(r.steps_per_second, ',.0f')} "
            f"| {_fmt(r.ratio, '.3f')} | {r.baseline or '-'} "
            f"| {_fmt(None if r.file_bytes is None else r.file_bytes / 1024, '.1f')} "
            f"| {_fmt(r.max_abs_error, '.1e')} | {_fmt(r.rss_growth_kib, '.0f')} | {r.note} |"
        )
    return "\n".join(lines)


def plot(rows: Sequence[Row], out: Path) -> list[Path]:
    """One bar chart of median per-step latency per (size, threads); [] without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    for size, threads in sorted({(r.size, r.threads) for r in rows}):
        chosen = [r for r in rows if r.size == size and r.threads == threads and r.median_us]
        if not chosen:
            continue
        labels = [f"{r.method} [{r.quantization}]" for r in chosen]
        per_step = [r.median_us / r.streams for r in chosen]
        figure, axis = plt.subplots(figsize=(9, 0.32 * len(chosen) + 1.5))
        axis.barh(labels, per_step, color=["#1f77b4" if r.method.startswith(("tflstm", "bare")) else "#999999" for r in chosen])
        axis.set_xscale("log")
        axis.invert_yaxis()
        axis.set_xlabel("median µs per stream-step (log scale)")
        axis.set_title(f"model {size}, {threads} thread(s)")
        figure.tight_layout()
        path = out / f"latency_{size}_t{threads}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written
