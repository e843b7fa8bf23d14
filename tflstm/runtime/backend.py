"""Interpreter backends, imported lazily and wrapped once: ai-edge-litert, tflite-runtime, TensorFlow.

`Engine` binds one allocated interpreter's hot-path calls once, so the stepping
code never branches on the backend.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tflstm.runtime.errors import ModelError

BACKENDS = ("litert", "tflite_runtime", "tf")
_MODULES = {
    "litert": ("ai_edge_litert.interpreter", "pip install ai-edge-litert"),
    "tflite_runtime": ("tflite_runtime.interpreter", "pip install tflite-runtime"),
    "tf": ("tensorflow.lite.python.interpreter", "pip install tensorflow"),
}


def interpreter_module(backend: str = "auto") -> tuple[Any, str]:
    """Returns (interpreter module, backend name).

    Args:
        backend: "auto" tries ai-edge-litert, then tflite-runtime, then TensorFlow;
            "litert", "tflite_runtime" or "tf" forces one. Default: "auto".

    Raises:
        ValueError: for an unknown backend name.
        ImportError: when the backend (or, for "auto", every backend) is missing,
            with the pip command.
    """
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"`backend` must be 'auto' or one of {BACKENDS}, got {backend!r}.")
    errors = []
    for name in BACKENDS if backend == "auto" else (backend,):
        module_name, install = _MODULES[name]
        try:
            return importlib.import_module(module_name), name
        except ImportError as err:
            errors.append(f"{name} ({install}): {err}")
    raise ImportError("No TFLite interpreter backend could be imported: " + "; ".join(errors))


@dataclasses.dataclass(frozen=True)
class Engine:
    """One allocated interpreter with its hot-path calls bound once.

    Attributes:
        backend: backend name.
        set_tensor: set_tensor(index, array) copies `array` into tensor `index`.
        get_tensor: get_tensor(index) returns a copy of tensor `index`.
        invoke: runs the model.
        reset_variables: resets every variable (state) tensor to zero.
        view: view(index) returns a numpy array over tensor `index`'s buffer,
            valid for the engine's life (tensors are allocated once).
        interpreter: the wrapped interpreter. Its own `invoke()` refuses to run
            while views of its buffers exist; use the engine's calls.
    """

    backend: str
    set_tensor: Callable[[int, np.ndarray], None]
    get_tensor: Callable[[int], np.ndarray]
    invoke: Callable[[], None]
    reset_variables: Callable[[], None]
    view: Callable[[int], np.ndarray]
    interpreter: Any


def make_engine(
    model: bytes | str | Path, *, num_threads: int = 1, backend: str = "auto", xnnpack: bool = False
) -> Engine:
    """Creates and allocates an interpreter for `model`.

    Args:
        model: a `.tflite` path, or its bytes (kept alive by the interpreter). Prefer
            the path: the file is memory-mapped page-aligned, and float32 weights,
            which the LSTM kernel reads in place, run up to 15% faster on large
            models than from a Python bytes object (measured on the L model).
        num_threads: interpreter threads. Default: 1.
        backend: see `interpreter_module`. Default: "auto".
        xnnpack: apply the default XNNPACK delegate. The fused LSTM op does not
            run on it; without it an interpreter costs less memory (it does not
            repack the dense weights). Default: False.
    """
    if not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"`num_threads` must be an int >= 1, got {num_threads!r}.")
    module, name = interpreter_module(backend)
    resolver = module.OpResolverType.AUTO if xnnpack else module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    try:
        interpreter = module.Interpreter(**source, num_threads=num_threads, experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ModelError(f"The {name} interpreter refused the model: {err}") from err
    # The public set_tensor/invoke/get_tensor re-check their arguments and the
    # interpreter's references on every call, and invoke() refuses to run while
    # numpy views of the buffers exist. The wrapped object underneath (shared by
    # every backend) does the same work without those checks, so the runtime can
    # keep views of the input, output and state buffers and copy through them.
    raw = getattr(interpreter, "_interpreter", None)
    if raw is not None and all(hasattr(raw, m) for m in ("SetTensor", "GetTensor", "Invoke")):
        return Engine(
            name, raw.SetTensor, raw.GetTensor, raw.Invoke, raw.ResetVariableTensors,
            lambda index: interpreter.tensor(index)(), interpreter,
        )
    raise ImportError(
        f"The {name} interpreter lacks the calls tflstm binds (SetTensor, GetTensor, Invoke); "
        "use ai-edge-litert >= 2.3 or tflite-runtime 2.14."
    )
