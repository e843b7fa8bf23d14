"""Runs every tflstm model of a folder on tflite-runtime; meant for the edge venv.

Usage: edge_check.py MODELS_DIR REFERENCE.npz
Prints one JSON line: backend, whether TensorFlow got imported, and the max abs
error of each model against the reference outputs (x [n, T, D], y [n, T, K]).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tflstm.normalization import apply as normalize
from tflstm.runtime import StreamingModel, read_metadata
from tflstm.runtime.backend import make_engine


def stream(model: StreamingModel, x: np.ndarray) -> np.ndarray:
    """Steps x [n, T, D] through a step model, `batch_size` sequences at a time -> [n, T, K]."""
    batch, parts = model.batch_size, []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        rows = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)])
        model.reset()
        steps = [model.step(rows[:, t] if batch > 1 else rows[0, t]) for t in range(x.shape[1])]
        parts.append(np.stack(steps, axis=-2).reshape(batch, x.shape[1], -1)[: len(chunk)])
    return np.concatenate(parts)


def main(models_dir: str, reference_path: str) -> None:
    with np.load(reference_path) as npz:
        x, y = npz["x"], npz["y"]
    errors = {}
    for path in sorted(Path(models_dir).glob("*.tflite")):
        content = path.read_bytes()
        meta = read_metadata(content)
        if meta.kind == "step":
            got = stream(StreamingModel(content, backend="tflite_runtime"), x)
        else:
            engine = make_engine(content, backend="tflite_runtime")
            got = []
            for sequence in normalize(x, meta.normalization):
                engine.reset_variables()
                engine.set_tensor(meta.inputs[0].tensor_index, sequence[:, None, :])
                engine.invoke()
                got.append(engine.get_tensor(meta.outputs[0].tensor_index)[:, 0])
            got = np.asarray(got)
        errors[path.name] = float(np.abs(got - y).max())
    print(json.dumps({
        "backend": "tflite_runtime",
        "tensorflow_imported": any(m == "tensorflow" or m.startswith("tensorflow.") for m in sys.modules),
        "numpy": np.__version__,
        "errors": errors,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
