"""The weights dict every peer is built from, and its conversions to other layouts.

A weights dict describes stacked LSTM layers (no peepholes, no projection) and a
dense head applied at every step, with plain NumPy arrays in tflstm's per-gate
layout (`tflstm.fused_op`)::

    {"layers": [{"input_to_input_w": [units, depth], "input_to_forget_w", "input_to_cell_w",
                 "input_to_output_w",
                 "recurrent_to_input_w": [units, units], ... forget, cell, output,
                 "input_bias": [units], "forget_bias", "cell_bias", "output_bias"}, ...],
     "head": {"kernel": [last_units, outputs], "bias": [outputs]},
     "activation": "sigmoid" | "softmax" | "linear"}

One step of a layer (sigma the logistic function, * elementwise)::

    i = sigma(W_i x + R_i h + b_i)      f = sigma(W_f x + R_f h + b_f)
    g = tanh(W_c x + R_c h + b_c)       o = sigma(W_o x + R_o h + b_o)
    c = f * c + i * g                   h = o * tanh(c)

and the head is `activation(h_top @ kernel + bias)`. The forget bias is the
stored bias: nothing is added to it.

The gate order is tflstm's (`tflstm.fused_op.GATES`, also Keras's: i, f, c, o) and
the names are `tflstm.fused_op.weight_name`'s. This module needs NumPy only.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tflstm.fused_op import GATES, weight_name

ONNX_GATES = ("input", "output", "forget", "cell")
"""Gate order of the ONNX `LSTM` operator: i, o, f, c."""

ACTIVATIONS = ("sigmoid", "softmax", "linear")

Weights = dict[str, Any]
"""A weights dict (see the module docstring)."""


class Dims(NamedTuple):
    """Sizes of a model.

    Attributes:
        depth: input features per step.
        units: units of each LSTM layer, bottom first.
        outputs: head outputs.
    """

    depth: int
    units: tuple[int, ...]
    outputs: int


def _array(layer: dict[str, Any], key: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    if key not in layer:
        raise ValueError(f"{where}: missing {key!r}.")
    value = np.asarray(layer[key])
    if value.shape != shape:
        raise ValueError(f"{where}: {key!r} must have shape {list(shape)}, got {list(value.shape)}.")
    return value


def dims(weights: Weights) -> Dims:
    """Checks a weights dict's keys and shapes and returns its sizes.

    Raises:
        ValueError: on a missing key, a wrong shape or an unknown activation.
    """
    layers = weights.get("layers")
    if not layers:
        raise ValueError("The weights dict needs a non-empty 'layers' list.")
    first = weight_name("input", "input")
    depth = int(np.shape(layers[0].get(first, np.zeros((0, 0))))[1])
    units: list[int] = []
    layer_depth = depth
    for k, layer in enumerate(layers):
        where = f"layers[{k}]"
        n = int(np.shape(layer.get(first, np.zeros((0, 0))))[0])
        if n <= 0 or layer_depth <= 0:
            raise ValueError(f"{where}: {first!r} must be a non-empty [units, depth] matrix.")
        for gate in GATES:
            _array(layer, weight_name("input", gate), (n, layer_depth), where)
            _array(layer, weight_name("recurrent", gate), (n, n), where)
            _array(layer, weight_name("bias", gate), (n,), where)
        units.append(n)
        layer_depth = n
    head = weights.get("head")
    if not isinstance(head, dict) or "kernel" not in head:
        raise ValueError("The weights dict needs 'head': {'kernel': [units, outputs], 'bias': [outputs]}.")
    outputs = int(np.shape(head["kernel"])[-1])
    _array(head, "kernel", (layer_depth, outputs), "head")
    _array(head, "bias", (outputs,), "head")
    if weights.get("activation") not in ACTIVATIONS:
        raise ValueError(f"'activation' must be one of {ACTIVATIONS}, got {weights.get('activation')!r}.")
    return Dims(depth, tuple(units), outputs)


def _f32(value: Any) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.float32)


def gate_stacked(layer: dict[str, Any], order: tuple[str, ...] = GATES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One layer's gates stacked in `order`: W [4U, D], R [4U, U], b [4U], float32."""
    return (
        _f32(np.concatenate([layer[weight_name("input", g)] for g in order], axis=0)),
        _f32(np.concatenate([layer[weight_name("recurrent", g)] for g in order], axis=0)),
        _f32(np.concatenate([layer[weight_name("bias", g)] for g in order], axis=0)),
    )


def keras_lstm_weights(layer: dict[str, Any]) -> list[np.ndarray]:
    """One layer in Keras `LSTM.set_weights` layout (Keras 3 and tf-keras alike).

    Returns `[kernel [D, 4U], recurrent_kernel [U, 4U], bias [4U]]`, gates i, f, c, o.
    """
    w, r, b = gate_stacked(layer, GATES)
    return [_f32(w.T), _f32(r.T), b]


def onnx_lstm_weights(layer: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One layer as the ONNX `LSTM` operator's W, R and B inputs (one direction).

    Returns `W [1, 4U, D]`, `R [1, 4U, U]`, `B [1, 8U]`, gates i, o, f, c; B is
    the input bias (ours) followed by the recurrent bias (zeros).
    """
    w, r, b = gate_stacked(layer, ONNX_GATES)
    return w[None], r[None], np.concatenate([b, np.zeros_like(b)])[None]


def random_weights(
    depth: int,
    units: tuple[int, ...] | list[int],
    outputs: int,
    activation: str = "sigmoid",
    *,
    seed: int = 0,
) -> Weights:
    """A weights dict with Glorot-uniform-like random weights and small random biases."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {ACTIVATIONS}, got {activation!r}.")
    rng = np.random.default_rng(seed)

    def uniform(shape: tuple[int, ...], fan_in: int, fan_out: int) -> np.ndarray:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(np.float32)

    layers = []
    layer_depth = depth
    for n in units:
        layer: dict[str, np.ndarray] = {}
        for gate in GATES:
            layer[weight_name("input", gate)] = uniform((n, layer_depth), layer_depth, 4 * n)
        for gate in GATES:
            layer[weight_name("recurrent", gate)] = uniform((n, n), n, 4 * n)
        for gate in GATES:
            layer[weight_name("bias", gate)] = rng.uniform(-0.1, 0.1, n).astype(np.float32) + (gate == "forget")
        layers.append(layer)
        layer_depth = n
    head = {
        "kernel": uniform((layer_depth, outputs), layer_depth, outputs),
        "bias": rng.uniform(-0.1, 0.1, outputs).astype(np.float32),
    }
    return {"layers": layers, "head": head, "activation": activation}
