"""Peer methods: the ways people stream an LSTM today, for benchmarking against tflstm.

Every peer is built from the same weights dict (`benchmarks.peers.weights`) and
exposes the `StepMethod` interface: `reset()` zeroes the state and `step(x)`
takes one float32 [features] sample and returns the head output [outputs].
Factories `make_<family>(weights, *, threads=1, **opts)` raise ImportError with
the pip command when a dependency is missing, so a runner can skip the peer.

Importing this package imports NumPy only: TensorFlow, Keras, ONNX and the
runtimes are imported inside the factories. `PEERS` lists the standard
variants by name; `make(name, weights)` builds one.

Families (modules):
    numpy_step       `make_numpy_step`: NumPy reference step.
    tflite_keras     `make_tfkeras_unfused_state_io`: tf-keras LSTM with state I/O
                     converted to TFLite (WHILE loop, unfused), state carried;
                     `make_sliding_window(window=W)`: fused sequence model re-run
                     over the last W samples.
    keras_stateful   `make_keras3_stateful`, `make_tfkeras_stateful`
                     (call="predict_on_batch" or "call").
    onnx_lstm        `make_onnxruntime_lstm`: ONNX LSTM ops in ONNX Runtime.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from benchmarks.peers.weights import Weights


@runtime_checkable
class StepMethod(Protocol):
    """One streaming method: state inside, one sample per `step`."""

    name: str

    def reset(self) -> None:
        """Zeroes the state."""

    def step(self, x: np.ndarray) -> np.ndarray:
        """x float32 [features], one time step -> outputs [outputs]."""


class Peer(NamedTuple):
    """A registered peer variant: `module.factory(weights, threads=..., **options)`."""

    module: str
    factory: str
    options: dict[str, Any]


PEERS: dict[str, Peer] = {
    "numpy_step": Peer("numpy_step", "make_numpy_step", {}),
    "tfkeras_unfused_state_io": Peer("tflite_keras", "make_tfkeras_unfused_state_io", {}),
    "sliding_window_7": Peer("tflite_keras", "make_sliding_window", {"window": 7}),
    "sliding_window_32": Peer("tflite_keras", "make_sliding_window", {"window": 32}),
    "keras3_stateful_predict_on_batch": Peer("keras_stateful", "make_keras3_stateful", {"call": "predict_on_batch"}),
    "keras3_stateful_call": Peer("keras_stateful", "make_keras3_stateful", {"call": "call"}),
    "tfkeras_stateful_predict_on_batch": Peer("keras_stateful", "make_tfkeras_stateful", {"call": "predict_on_batch"}),
    "tfkeras_stateful_call": Peer("keras_stateful", "make_tfkeras_stateful", {"call": "call"}),
    "onnxruntime_lstm": Peer("onnx_lstm", "make_onnxruntime_lstm", {}),
}
"""Standard variants by name (the name each built method reports)."""

_FACTORIES = {peer.factory: peer.module for peer in PEERS.values()}


def make(name: str, weights: Weights, *, threads: int = 1) -> StepMethod:
    """Builds the registered peer `name` (a key of `PEERS`).

    Raises:
        KeyError: unknown name.
        ImportError: a dependency is missing (the message has the pip command).
    """
    if name not in PEERS:
        raise KeyError(f"Unknown peer {name!r}; known: {', '.join(PEERS)}.")
    peer = PEERS[name]
    factory = getattr(importlib.import_module(f"{__name__}.{peer.module}"), peer.factory)
    return factory(weights, threads=threads, **peer.options)


def __getattr__(name: str) -> Any:
    if name in _FACTORIES:
        return getattr(importlib.import_module(f"{__name__}.{_FACTORIES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PEERS", "Peer", "StepMethod", "Weights", "make", *_FACTORIES]
