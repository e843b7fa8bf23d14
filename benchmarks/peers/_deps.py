"""Lazy imports of the peers' optional dependencies, with the pip command on failure."""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType
from typing import Any

PIP = {
    "tensorflow": "pip install tensorflow",
    "tf_keras": "pip install tf-keras==2.21.*  (match the TensorFlow version)",
    "keras": "pip install 'keras>=3'",
    "ai_edge_litert": "pip install ai-edge-litert",
    "onnx": "pip install onnx onnxruntime",
    "onnxruntime": "pip install onnxruntime",
}


def require(module: str, method: str) -> ModuleType:
    """Imports `module` or raises ImportError naming `method` and the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        raise ImportError(
            f"The peer method {method!r} needs {top}: {PIP.get(top, f'pip install {top}')}"
        ) from error


def tensorflow(method: str, threads: int) -> ModuleType:
    """Imports TensorFlow and asks for `threads` intra-op threads (and one inter-op).

    TensorFlow's thread pools are process-wide and fixed once its runtime has
    started; if they were already set otherwise this warns and leaves them.
    """
    tf = require("tensorflow", method)
    threading = tf.config.threading
    if (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()) != (threads, 1):
        try:
            threading.set_intra_op_parallelism_threads(threads)
            threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            warnings.warn(
                f"{method}: TensorFlow's runtime already started, its thread pools stay at "
                f"intra={threading.get_intra_op_parallelism_threads()} "
                f"inter={threading.get_inter_op_parallelism_threads()} (0 = all cores), "
                f"not {threads}.",
                RuntimeWarning,
                stacklevel=3,
            )
    return tf


def tflite_interpreter(method: str) -> Any:
    """The TFLite `Interpreter` class: ai-edge-litert, else tflite-runtime."""
    try:
        return require("ai_edge_litert.interpreter", method).Interpreter
    except ImportError:
        try:
            return importlib.import_module("tflite_runtime.interpreter").Interpreter
        except ImportError:
            pass
        raise
