"""The runtime's overhead with one model per process, the way a device runs it.

`benchmarks.run --suite full` keeps interpreters of several models alive in one
process, which costs the larger models cache misses that a device running one
model does not pay. This runs each model in processes of its own (`--processes`
each) and times, alternately in blocks against the bare loop on the same
model (`benchmarks.methods.BareInvoke`): `step` (inputs checked for NaN/Inf,
the default), `step` with `allow_nonfinite=True`, and 64 streams stepped
round-robin in swap mode and with interpreters of their own. Prints a markdown
table of the ratios' ranges over the processes. Runtime only (no TensorFlow).

    python -m benchmarks.one_model --models_dir build/bench-full/models   # after make bench-full
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from absl import app, flags

from benchmarks import methods
from benchmarks.timing import measure_alternating

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "android_assets" / "digits_step_float32.tflite"
STREAMS = 64
VARIANTS = ("step", "step, unchecked", f"{STREAMS} streams, swap", f"{STREAMS} streams, own interpreters")

_MODELS_DIR = flags.DEFINE_string("models_dir", "build/bench-full/models", "Models of `benchmarks.run` (S/, M/, ...).")
_SIZES = flags.DEFINE_list("sizes", ["S", "M"], "Sizes to time from --models_dir; the digits model is timed too.")
_PROCESSES = flags.DEFINE_integer("processes", 3, "Processes per model.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 10_000, "Timed steps per variant and process.", lower_bound=100)
_CHILD = flags.DEFINE_string("child", None, "Internal: time this model in this process and print JSON.")


def inputs(model_path: Path) -> np.ndarray:
    """float32 [STREAMS, time, depth]: the reference inputs of a benchmark model, or raw digit images."""
    if model_path.resolve() == DIGITS:
        from sklearn.datasets import load_digits  # the demo extra

        return load_digits().images[:STREAMS].astype(np.float32)
    with np.load(model_path.parent / "reference.npz") as npz:
        return np.resize(npz["x"].astype(np.float32), (STREAMS, *npz["x"].shape[1:]))


def time_here(model_path: Path, steps: int) -> dict[str, float]:
    """Each variant's median over the bare loop's, measured alternately in this process."""
    xs = inputs(model_path)
    bare = methods.BareInvoke(model_path, xs[0])
    functions = (
        methods.TflstmStep(model_path, xs[0]).step,
        methods.TflstmStep(model_path, xs[0], check_inputs=False).step,
        methods.TflstmStreams(model_path, xs, streams="swap").step,
        methods.TflstmStreams(model_path, xs, streams="interpreter").step,
    )
    ratios = {}
    for name, function in zip(VARIANTS, functions):
        ours, theirs = measure_alternating(function, bare.step, steps, steps // 10)
        ratios[name] = ours.median_us / theirs.median_us
    return ratios


def main(argv: list[str]) -> None:
    del argv
    if _CHILD.value:
        print(json.dumps(time_here(Path(_CHILD.value), _STEPS.value)))
        return
    models = {size: Path(_MODELS_DIR.value) / size / "step_float32.tflite" for size in _SIZES.value}
    models["digits (pixels / 16 in the metadata)"] = DIGITS
    lines = ["| model, one per process | " + " | ".join(VARIANTS) + " |", "|---|" + "---:|" * len(VARIANTS)]
    for name, path in models.items():
        runs = []
        for _ in range(_PROCESSES.value):
            child = [sys.executable, "-m", "benchmarks.one_model", f"--child={path}", f"--steps={_STEPS.value}"]
            runs.append(json.loads(subprocess.run(child, cwd=ROOT, check=True, capture_output=True, text=True).stdout))
        cells = [f"{min(r[v] for r in runs):.2f}-{max(r[v] for r in runs):.2f}x" for v in VARIANTS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
