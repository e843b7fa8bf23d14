"""Interpreter backends, imported lazily: ai-edge-litert, tflite-runtime or TensorFlow."""

from __future__ import annotations

import importlib
from typing import Any

BACKENDS = ("litert", "tflite_runtime", "tf")
_MODULES = {
    "litert": ("ai_edge_litert.interpreter", "pip install ai-edge-litert"),
    "tflite_runtime": ("tflite_runtime.interpreter", "pip install tflite-runtime"),
    "tf": ("tensorflow.lite", "pip install tensorflow"),
}


def interpreter_class(backend: str = "auto") -> tuple[type, str]:
    """Returns (Interpreter class, backend name).

    Args:
        backend: "auto" tries ai-edge-litert, then tflite-runtime, then TensorFlow;
            "litert", "tflite_runtime" or "tf" forces one. Default: "auto".
    """
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"`backend` must be 'auto' or one of {BACKENDS}, got {backend!r}.")
    errors = []
    for name in BACKENDS if backend == "auto" else (backend,):
        module_name, install = _MODULES[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            errors.append(f"{name}: {err} ({install})")
            continue
        return module.Interpreter, name
    raise ImportError("No TFLite interpreter backend could be imported: " + "; ".join(errors))


def make_interpreter(model: bytes, num_threads: int = 1, backend: str = "auto") -> tuple[Any, str]:
    """An allocated interpreter for `model` and the backend name."""
    cls, name = interpreter_class(backend)
    interpreter = cls(model_content=model, num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter, name
