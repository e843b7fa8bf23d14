"""Keras layers -> what the rebuilt TensorFlow graph computes for them, or a refusal.

`map_layer` turns one Keras layer (Keras 3 or tf-keras) into one of:

    Lstm        an LSTM layer, its weights split per gate for `TFLiteLSTMCell`
    PerStep     a function of each time step's features alone (Dense, activations,
                normalization at inference, dropout = identity)
    Merge       an elementwise or last-axis merge of per-step branches (Add, Concatenate)
    TimeMixing  a function of a whole window: [time, batch, features] -> [1, batch, d]
                (Flatten, GlobalAveragePooling1D); only in chunk models

In the rebuilt graph a sequence is time-major [time, batch, features] where
Keras has [batch, time, features], and a value per window is [1, batch, d]
where Keras has [batch, d]: every per-step function works along the last axis,
which all share. Layers it cannot map raise `UnsupportedModelError`
naming the layer, why, and what to do.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import tensorflow as tf

from tflstm.convert.errors import UnsupportedModelError
from tflstm.convert.keras_model import FLAVORS
from tflstm.fused_op import weight_name

KERAS_GATES = ("input", "forget", "cell", "output")
"""Order of the four gate blocks along the last axis of Keras' LSTM `kernel` [depth, 4 * units],
`recurrent_kernel` [units, 4 * units] and `bias` [4 * units]: Keras splits them as i, f, c, o
(`keras/src/layers/rnn/lstm.py`, `LSTMCell.call`)."""

Fn = Callable[[tf.Tensor], tf.Tensor]


@dataclasses.dataclass(frozen=True)
class Lstm:
    """An LSTM layer.

    Attributes:
        units: number of units.
        weights: float32 arrays by tflstm weight name (`input_to_forget_w` [units, depth], ...).
        return_sequences: False: only the output at the last step of each call.
    """

    units: int
    weights: dict[str, np.ndarray]
    return_sequences: bool


@dataclasses.dataclass(frozen=True)
class PerStep:
    """A function of each time step's (or window value's) features alone.

    Attributes:
        fn: the function, on tensors [..., features].
        axis: the Keras axis the layer works along, which must be the last one;
            None for layers that always use the last axis or work elementwise.
    """

    fn: Fn
    axis: int | None = None


@dataclasses.dataclass(frozen=True)
class Merge:
    """A merge of branches of equal time steps.

    Attributes:
        fn: the function of the input tensors, in call order.
        axis: as for `PerStep`.
    """

    fn: Callable[[Sequence[tf.Tensor]], tf.Tensor]
    axis: int | None = None


@dataclasses.dataclass(frozen=True)
class TimeMixing:
    """A function of all time steps of a window: [time, batch, d] -> [1, batch, d'].

    Attributes:
        fn: the function of the time-major window.
        on_window: what the layer does to one value per window [1, batch, d]
            (Flatten of Keras' [batch, d] is the identity), or None if it needs
            a time axis.
    """

    fn: Fn
    on_window: PerStep | None = None


Mapped = Lstm | PerStep | Merge | TimeMixing


def _refuse(layer: Any, why: str, what_to_do: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"Layer {layer.name!r} ({type(layer).__name__}) {why}. {what_to_do}")


def lstm_weights(kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray | None) -> dict[str, np.ndarray]:
    """Keras' packed LSTM weights -> tflstm's per-gate weights (`tflstm.fused_op` slot layout).

    Args:
        kernel: float32 [depth, 4 * units], gate blocks in `KERAS_GATES` order.
        recurrent_kernel: float32 [units, 4 * units].
        bias: float32 [4 * units], or None for `use_bias=False` (zero biases).

    Returns:
        `input_to_<gate>_w` [units, depth], `recurrent_to_<gate>_w` [units, units]
        and `<gate>_bias` [units] for every gate: Keras multiplies x @ kernel, the
        fused op W @ x, hence the transposes.
    """
    units = recurrent_kernel.shape[0]
    if kernel.shape[1] != 4 * units or recurrent_kernel.shape != (units, 4 * units):
        raise ValueError(
            f"Expected LSTM kernels [depth, {4 * units}] and [{units}, {4 * units}], got "
            f"{list(kernel.shape)} and {list(recurrent_kernel.shape)}."
        )
    if bias is None:
        bias = np.zeros(4 * units, np.float32)
    weights = {}
    for k, gate in enumerate(KERAS_GATES):
        block = slice(k * units, (k + 1) * units)
        weights[weight_name("input", gate)] = np.ascontiguousarray(kernel[:, block].T, np.float32)
        weights[weight_name("recurrent", gate)] = np.ascontiguousarray(recurrent_kernel[:, block].T, np.float32)
        weights[weight_name("bias", gate)] = np.ascontiguousarray(bias[block], np.float32)
    return weights


def _numpy(variable: Any) -> np.ndarray | None:
    return None if variable is None else np.asarray(variable.numpy(), np.float32)


def _leaky_relu(slope: float) -> Fn:
    return functools.partial(tf.nn.leaky_relu, alpha=float(slope))


def _silu(x: tf.Tensor) -> tf.Tensor:
    return x * tf.sigmoid(x)


def _activations(keras: ModuleType) -> dict[str, Fn]:
    """Keras activation names -> TensorFlow functions computing the same."""
    table = {
        "linear": tf.identity, "relu": tf.nn.relu, "relu6": tf.nn.relu6, "sigmoid": tf.sigmoid, "tanh": tf.tanh,
        "softmax": functools.partial(tf.nn.softmax, axis=-1), "elu": tf.nn.elu, "swish": _silu, "silu": _silu,
    }
    if hasattr(keras.activations, "leaky_relu"):  # Keras 3; its slope defaults to 0.2, the layer's to 0.3
        slope = inspect.signature(keras.activations.leaky_relu).parameters["negative_slope"].default
        table["leaky_relu"] = _leaky_relu(slope)
    return table


def _activation(layer: Any, name: Any, keras: ModuleType) -> Fn:
    table = _activations(keras)
    if name is None:
        return tf.identity
    if not isinstance(name, str) or name not in table:
        raise _refuse(
            layer, f"uses activation {name!r}, which tflstm does not map",
            f"Use one of {sorted(table)} (or an activation layer of the README's table).",
        )
    return table[name]


def _dense(layer: Any, keras: ModuleType) -> PerStep:
    kernel, bias = _numpy(layer.kernel), _numpy(layer.bias)
    activation = _activation(layer, layer.get_config().get("activation"), keras)

    def dense(x: tf.Tensor) -> tf.Tensor:
        y = tf.matmul(x, tf.constant(kernel))  # [time, batch, d] @ [d, units]: one FULLY_CONNECTED
        return activation(y if bias is None else tf.nn.bias_add(y, tf.constant(bias)))

    return PerStep(dense)


def _relu(layer: Any) -> PerStep:
    config = layer.get_config()
    if float(config.get("threshold") or 0.0) != 0.0:
        raise _refuse(layer, "has a nonzero threshold", "Use threshold=0 (or a Dense bias to shift the input).")
    slope, max_value = float(config.get("negative_slope") or 0.0), config.get("max_value")

    def relu(x: tf.Tensor) -> tf.Tensor:
        y = tf.nn.leaky_relu(x, alpha=slope) if slope else tf.nn.relu(x)
        return y if max_value is None else tf.minimum(y, float(max_value))

    return PerStep(relu)


def _leaky_relu_layer(layer: Any) -> PerStep:
    config = layer.get_config()  # Keras 3 calls the slope negative_slope, tf-keras alpha
    return PerStep(_leaky_relu(config["negative_slope"] if "negative_slope" in config else config["alpha"]))


def _elu(layer: Any) -> PerStep:
    alpha = float(layer.get_config().get("alpha", 1.0))
    if alpha == 1.0:
        return PerStep(tf.nn.elu)
    return PerStep(lambda x: tf.where(x > 0, x, alpha * tf.nn.elu(x)))


def _batch_normalization(layer: Any) -> PerStep:
    """Inference-time batch normalization: x * inv + (beta - mean * inv), inv = gamma / sqrt(var + eps)."""
    config = layer.get_config()
    mean, variance = _numpy(layer.moving_mean), _numpy(layer.moving_variance)
    inv = (1.0 / np.sqrt(variance + np.float32(config["epsilon"]))).astype(np.float32)
    if layer.gamma is not None:
        inv = inv * _numpy(layer.gamma)
    shift = -mean * inv
    if layer.beta is not None:
        shift = shift + _numpy(layer.beta)
    return PerStep(lambda x: x * tf.constant(inv) + tf.constant(shift), axis=_single_axis(layer, config["axis"]))


def _layer_normalization(layer: Any) -> PerStep:
    """Normalizes each step over its features: x * inv + (beta - mean * inv), inv = gamma / sqrt(var + eps)."""
    config = layer.get_config()
    if config.get("rms_scaling"):
        raise _refuse(layer, "uses rms_scaling", "Use rms_scaling=False.")
    epsilon = float(config["epsilon"])
    gamma, beta = _numpy(layer.gamma), _numpy(layer.beta)

    def normalize(x: tf.Tensor) -> tf.Tensor:
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        variance = tf.reduce_mean(tf.math.squared_difference(x, mean), axis=-1, keepdims=True)
        inv = tf.math.rsqrt(variance + epsilon)
        if gamma is not None:
            inv = inv * tf.constant(gamma)
        shift = -mean * inv
        if beta is not None:
            shift = shift + tf.constant(beta)
        return x * inv + shift

    return PerStep(normalize, axis=_single_axis(layer, config["axis"]))


def _single_axis(layer: Any, axis: Any) -> int:
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if len(axes) != 1:
        raise _refuse(layer, f"normalizes over axes {axes}", "Normalize over the feature axis (-1) only.")
    return int(axes[0])


def _softmax(layer: Any) -> PerStep:
    axis = layer.get_config().get("axis", -1)
    return PerStep(functools.partial(tf.nn.softmax, axis=-1), axis=_single_axis(layer, axis))


def _average(xs: Sequence[tf.Tensor]) -> tf.Tensor:
    return functools.reduce(tf.add, xs) / float(len(xs))


def _concatenate(layer: Any) -> Merge:
    return Merge(lambda xs: tf.concat(list(xs), axis=-1), axis=int(layer.get_config().get("axis", -1)))


def _flatten_window(x: tf.Tensor) -> tf.Tensor:
    """[time, batch, d] -> [1, batch, time * d], the order of Keras' Flatten of [batch, time, d]."""
    time_steps, batch, depth = x.shape.as_list()
    return tf.reshape(tf.transpose(x, [1, 0, 2]), [1, batch, time_steps * depth])


def _flatten(layer: Any) -> TimeMixing:
    if layer.get_config().get("data_format") == "channels_first":
        raise _refuse(layer, "flattens channels first", "Use data_format='channels_last'.")
    return TimeMixing(_flatten_window, on_window=PerStep(tf.identity))


def _reshape(layer: Any) -> TimeMixing:
    target = tuple(layer.get_config()["target_shape"])
    if len(target) != 1:
        raise _refuse(
            layer, f"reshapes to {list(target)}",
            "Only a Reshape to one dimension (flattening a window, like Flatten) is supported.",
        )
    return TimeMixing(_flatten_window, on_window=PerStep(tf.identity))


def _global_pooling(reduce: Callable[..., tf.Tensor]) -> Callable[[Any], TimeMixing]:
    def mapping(layer: Any) -> TimeMixing:
        config = layer.get_config()
        if config.get("keepdims") or config.get("data_format") == "channels_first":
            raise _refuse(layer, "keeps the time axis or pools channels first", "Use keepdims=False, channels_last.")
        return TimeMixing(lambda x: reduce(x, axis=0, keepdims=True))

    return mapping


def _lstm(layer: Any) -> Lstm:
    config = layer.get_config()
    if config.get("activation") != "tanh" or config.get("recurrent_activation") != "sigmoid":
        raise _refuse(
            layer,
            f"uses activation={config.get('activation')!r} and recurrent_activation="
            f"{config.get('recurrent_activation')!r}; the fused TFLite LSTM computes tanh and sigmoid",
            "Retrain with the defaults activation='tanh', recurrent_activation='sigmoid'.",
        )
    if config.get("go_backwards"):
        raise _refuse(
            layer, "runs backwards from the end of the sequence, which a streaming model never sees",
            "Use go_backwards=False.",
        )
    if config.get("return_state"):
        raise _refuse(
            layer, "returns its state (return_state=True)",
            "Drop return_state: tflstm's step models expose every layer's state as `<layer>/h` and `<layer>/c`.",
        )
    if config.get("time_major"):
        raise _refuse(layer, "is time-major", "Use time_major=False (inputs [batch, time, features]).")
    cell = layer.cell
    weights = lstm_weights(_numpy(cell.kernel), _numpy(cell.recurrent_kernel), _numpy(cell.bias))
    return Lstm(units=int(config["units"]), weights=weights, return_sequences=bool(config["return_sequences"]))


def _time_distributed(layer: Any, keras: ModuleType) -> PerStep:
    inner = map_layer(layer.layer, keras)
    if not isinstance(inner, PerStep) or inner.axis not in (None, -1, 1):  # the inner layer sees [batch, d]
        raise _refuse(
            layer, f"wraps {type(layer.layer).__name__}, which is not a per-step layer along the features",
            "TimeDistributed may wrap Dense, activations, normalization and dropout layers.",
        )
    return PerStep(inner.fn)


_MAPPINGS: dict[str, Callable[[Any, ModuleType], Mapped]] = {
    "LSTM": lambda layer, keras: _lstm(layer),
    "Dense": _dense,
    "TimeDistributed": _time_distributed,
    "Activation": lambda layer, keras: PerStep(_activation(layer, layer.get_config()["activation"], keras)),
    "ReLU": lambda layer, keras: _relu(layer),
    "LeakyReLU": lambda layer, keras: _leaky_relu_layer(layer),
    "ELU": lambda layer, keras: _elu(layer),
    "Softmax": lambda layer, keras: _softmax(layer),
    "BatchNormalization": lambda layer, keras: _batch_normalization(layer),
    "LayerNormalization": lambda layer, keras: _layer_normalization(layer),
    **{  # identities at inference
        name: lambda layer, keras: PerStep(tf.identity)
        for name in ("Dropout", "SpatialDropout1D", "GaussianDropout", "GaussianNoise", "AlphaDropout",
                     "ActivityRegularization")
    },
    "Add": lambda layer, keras: Merge(lambda xs: functools.reduce(tf.add, xs)),
    "Subtract": lambda layer, keras: Merge(lambda xs: tf.subtract(*xs)),
    "Multiply": lambda layer, keras: Merge(lambda xs: functools.reduce(tf.multiply, xs)),
    "Average": lambda layer, keras: Merge(_average),
    "Maximum": lambda layer, keras: Merge(lambda xs: functools.reduce(tf.maximum, xs)),
    "Minimum": lambda layer, keras: Merge(lambda xs: functools.reduce(tf.minimum, xs)),
    "Concatenate": lambda layer, keras: _concatenate(layer),
    "Flatten": lambda layer, keras: _flatten(layer),
    "Reshape": lambda layer, keras: _reshape(layer),
    "GlobalAveragePooling1D": lambda layer, keras: _global_pooling(tf.reduce_mean)(layer),
    "GlobalMaxPooling1D": lambda layer, keras: _global_pooling(tf.reduce_max)(layer),
}

SUPPORTED_LAYERS = tuple(sorted(_MAPPINGS))
"""Keras layer classes `map_layer` converts."""

_NOT_YET = "Replace it with an LSTM layer (and retrain): only LSTMs convert to the fused TFLite op for now."
_SEES_FUTURE = "A streaming model sees one time step at a time and cannot compute it. Remove it"
_REFUSED: dict[str, tuple[str, str]] = {
    # class name: (why, what to do)
    "Bidirectional": (
        "runs a second RNN backwards from the end of the sequence, which a streaming model never sees",
        "Use a unidirectional LSTM (retrain without Bidirectional).",
    ),
    "GRU": ("is not supported yet: tflstm converts LSTM layers", _NOT_YET),
    "SimpleRNN": ("is not supported yet: tflstm converts LSTM layers", _NOT_YET),
    "RNN": ("is a generic RNN wrapper, not supported", "Use keras.layers.LSTM."),
    "ConvLSTM1D": ("is not supported yet: tflstm converts LSTM layers", _NOT_YET),
    "Attention": ("attends over the whole sequence, future steps included", _SEES_FUTURE + "."),
    "AdditiveAttention": ("attends over the whole sequence, future steps included", _SEES_FUTURE + "."),
    "MultiHeadAttention": ("attends over the whole sequence, future steps included", _SEES_FUTURE + "."),
    "GroupedQueryAttention": ("attends over the whole sequence, future steps included", _SEES_FUTURE + "."),
    "Masking": (
        "masks time steps; the fused LSTM processes every step it is given",
        "Remove Masking and feed only the real time steps (a streaming model takes them one at a time).",
    ),
    "Lambda": (
        "runs arbitrary Python code, which tflstm cannot convert",
        "Replace it with built-in layers (see the README's Keras section).",
    ),
    "TFOpLambda": (
        "is a TensorFlow function called on a Keras tensor, which tflstm cannot convert",
        "Replace it with built-in layers (see the README's Keras section).",
    ),
}
_NESTED = ("Functional", "Sequential", "Model")


def _conv1d(layer: Any) -> UnsupportedModelError:
    padding = layer.get_config().get("padding")
    if padding == "causal":
        return _refuse(
            layer, "is causal but not supported yet: it needs its last kernel_size - 1 inputs as extra state",
            "Remove it, or replace it with per-step layers (Dense, TimeDistributed(Dense)).",
        )
    return _refuse(
        layer, f"with padding={padding!r} is not causal: each output mixes neighbouring time steps"
        + (", future ones included" if padding == "same" else ""),
        _SEES_FUTURE + " (a causal Conv1D is not supported yet either).",
    )


def map_layer(layer: Any, keras: ModuleType) -> Mapped:
    """What the rebuilt graph computes for one Keras layer.

    Raises:
        UnsupportedModelError: a layer tflstm refuses (custom, time-reversing,
            attention, masking, GRU/SimpleRNN, non-causal Conv1D, ...), naming
            the layer, why, and what to do.
    """
    name = type(layer).__name__
    if type(layer).__module__.split(".")[0] not in FLAVORS:
        raise _refuse(
            layer, f"is a custom layer (class {name} from module {type(layer).__module__!r}): tflstm cannot "
            "tell what it computes",
            f"Build the model from supported layers ({', '.join(SUPPORTED_LAYERS)}), or build the network "
            "with tflstm.dynamic_rnn and convert it with tflstm.convert.from_session.",
        )
    if name in _REFUSED:
        raise _refuse(layer, *_REFUSED[name])
    if name in _NESTED:
        raise _refuse(layer, "is a nested model", "Build the model from its layers directly.")
    if name == "Conv1D":
        raise _conv1d(layer)
    mapping = _MAPPINGS.get(name)
    if mapping is None:
        raise _refuse(
            layer, "is not supported", f"Supported layers: {', '.join(SUPPORTED_LAYERS)} (see the README's Keras section).",
        )
    return mapping(layer, keras)
