"""Runtime-only smoke check of a .tflite model (no TensorFlow; runs under emulated aarch64).

    benchmarks/arm/run.sh benchmarks/arm/smoke.py MODEL.tflite DATA.npz [--tol 1e-5]

DATA.npz holds `x` (exactly the shape of the model's first input: one invoke) and `y`
(the expected first output, e.g. from ai-edge-litert on x86-64). Prints one JSON line and
exits 1 if the max abs diff exceeds --tol (or is not finite), 2 on a shape/dtype mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from importlib import metadata

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help=".tflite file")
    parser.add_argument("data", help=".npz with arrays x (first input) and y (first output)")
    parser.add_argument("--tol", type=float, default=1e-5, help="max abs diff allowed")
    args = parser.parse_args(argv)

    with np.load(args.data) as data:
        x, y = data["x"], data["y"]

    interpreter = Interpreter(model_path=args.model)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]

    in_shape = tuple(int(d) for d in inp["shape"])
    out_shape = tuple(int(d) for d in out["shape"])

    def fail(msg: str) -> int:
        print(f"smoke.py: {msg}", file=sys.stderr)
        return 2

    if x.shape != in_shape:
        return fail(f"x has shape {x.shape}, input {inp['name']!r} wants {in_shape}")
    if y.shape != out_shape:
        return fail(f"y has shape {y.shape}, output {out['name']!r} gives {out_shape}")
    if not np.can_cast(x.dtype, inp["dtype"], casting="same_kind"):
        return fail(f"x is {x.dtype}, input {inp['name']!r} is {np.dtype(inp['dtype'])}")

    interpreter.set_tensor(inp["index"], np.ascontiguousarray(x, dtype=inp["dtype"]))
    interpreter.invoke()
    got = interpreter.get_tensor(out["index"])

    diff = np.abs(got.astype(np.float64) - y.astype(np.float64))
    max_abs_diff = float(diff.max()) if diff.size else 0.0
    ok = bool(np.isfinite(max_abs_diff) and max_abs_diff <= args.tol)
    print(json.dumps({
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "ai_edge_litert": _version("ai-edge-litert"),
        "tensorflow_imported": "tensorflow" in sys.modules,
        "model": os.path.basename(args.model),
        "input_shape": list(in_shape),
        "output_shape": list(out_shape),
        "max_abs_diff": max_abs_diff if np.isfinite(max_abs_diff) else str(max_abs_diff),
        "tol": args.tol,
        "ok": ok,
    }))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
