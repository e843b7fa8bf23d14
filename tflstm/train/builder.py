"""A model builder for the common case: stacked `TFLiteLSTMCell` layers + a dense head.

The head is applied at every time step, so the streaming (one step) model gives
a prediction after every sample; training uses the last step's prediction.
The spec travels with the checkpoint as `spec.json`, so the converter can
rebuild the graph for any number of time steps and batch size.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from tflstm.train.cell import LSTMStateTuple, TFLiteLSTMCell
from tflstm.train.rnn import dynamic_rnn

SPEC_FILE = "spec.json"
CHECKPOINT_PREFIX = "model.ckpt"
HEADS = ("classification", "binary", "regression")
INPUT_NAME = "features"
OUTPUT_NAME = "predictions"


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """Arguments of one `TFLiteLSTMCell` (see there)."""

    num_units: int
    use_peepholes: bool = False
    cell_clip: float | None = None
    num_proj: int | None = None
    proj_clip: float | None = None
    forget_bias: float = 1.0

    def make_cell(self, name: str) -> TFLiteLSTMCell:
        """A new cell with these arguments."""
        return TFLiteLSTMCell(name=name, **dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the builder builds.

    Attributes:
        input_depth: features per time step.
        layers: the LSTM layers, bottom first.
        head: "classification" (softmax over `num_outputs` classes), "binary"
            (`num_outputs` independent sigmoid outputs) or "regression"
            (`num_outputs` linear outputs).
        num_outputs: classes or regression outputs.
        time_steps: length of the training windows (the sequence model's length).
        dataset: name of a built-in dataset the model was trained on ("digits"),
            used to verify conversions; None for user data.
    """

    input_depth: int
    layers: tuple[LayerSpec, ...]
    head: str
    num_outputs: int
    time_steps: int
    dataset: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "layers",
            tuple(l if isinstance(l, LayerSpec) else LayerSpec(**l) for l in self.layers),
        )
        if self.head not in HEADS:
            raise ValueError(f"`head` must be one of {HEADS}, got {self.head!r}.")
        for field in ("input_depth", "num_outputs", "time_steps"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"`{field}` must be a positive int, got {value!r}.")
        if not self.layers:
            raise ValueError("`layers` must hold at least one LayerSpec, got none.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Inverse of `to_dict`."""
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        """Writes `spec.json` into `directory`."""
        path = Path(directory) / SPEC_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ModelSpec:
        """Reads `spec.json` from a checkpoint directory."""
        path = Path(directory) / SPEC_FILE
        if not path.is_file():
            raise FileNotFoundError(f"No {SPEC_FILE} in {directory}: is it a tflstm checkpoint directory?")
        return cls.from_dict(json.loads(path.read_text()))


class ModelGraph(NamedTuple):
    """Tensors of a built model (all time-major).

    Attributes:
        graph: the graph holding them.
        features: float32 placeholder [time, batch, input_depth], named "features".
        logits: float32 [time, batch, num_outputs], head output before softmax.
        predictions: float32 [time, batch, num_outputs], named "predictions":
            class probabilities or regression outputs, at every step.
        final_state: one `LSTMStateTuple(c, h)` per layer.
    """

    graph: tf.Graph
    features: tf.Tensor
    logits: tf.Tensor
    predictions: tf.Tensor
    final_state: tuple[LSTMStateTuple, ...]


def build(spec: ModelSpec, time_steps: int, batch_size: int | None, seed: int | None = None) -> ModelGraph:
    """Builds the model in a new graph for `time_steps` steps and `batch_size` (None: any).

    Args:
        spec: the model.
        time_steps: steps of the input placeholder.
        batch_size: batch of the input placeholder; None: any.
        seed: graph-level seed, set before any variable exists, so the same seed
            gives the same initial weights. Default: None (random).
    """
    graph = tf.Graph()
    with graph.as_default():
        if seed is not None:
            tf.compat.v1.set_random_seed(seed)
        features = tf.compat.v1.placeholder(
            tf.float32, [time_steps, batch_size, spec.input_depth], name=INPUT_NAME
        )
        cells = [layer.make_cell(f"lstm_{k}") for k, layer in enumerate(spec.layers)]
        outputs, final_state = dynamic_rnn(cells, features)
        with tf.compat.v1.variable_scope("head"):
            kernel = tf.compat.v1.get_variable(
                "kernel", [cells[-1].output_size, spec.num_outputs], use_resource=True
            )
            bias = tf.compat.v1.get_variable(
                "bias", [spec.num_outputs], initializer=tf.compat.v1.zeros_initializer(),
                use_resource=True,
            )
        flat = tf.reshape(outputs, [-1, cells[-1].output_size])
        logits = tf.reshape(tf.matmul(flat, kernel) + bias, [time_steps, -1, spec.num_outputs])
        if batch_size is not None:
            logits.set_shape([time_steps, batch_size, spec.num_outputs])
        activation = {"classification": tf.nn.softmax, "binary": tf.sigmoid}.get(spec.head, tf.identity)
        head = activation(logits)
        predictions = tf.identity(head, name=OUTPUT_NAME)
    return ModelGraph(graph, features, logits, predictions, final_state)


def restore(checkpoint_dir: str | Path, time_steps: int, batch_size: int) -> tuple[ModelGraph, tf.compat.v1.Session]:
    """Rebuilds the model for `time_steps` x `batch_size` and restores the trained weights."""
    spec = ModelSpec.load(checkpoint_dir)
    model = build(spec, time_steps, batch_size)
    sess = tf.compat.v1.Session(graph=model.graph)
    with model.graph.as_default():
        tf.compat.v1.train.Saver().restore(sess, str(Path(checkpoint_dir) / CHECKPOINT_PREFIX))
    return model, sess


def predict(checkpoint_dir: str | Path, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """TensorFlow predictions at every step: x float32 [n, time, depth] -> [n, time, outputs]."""
    x = np.asarray(x, dtype=np.float32)
    model, sess = restore(checkpoint_dir, x.shape[1], None)
    with sess:
        parts = [
            sess.run(model.predictions, {model.features: np.swapaxes(x[i : i + batch_size], 0, 1)})
            for i in range(0, len(x), batch_size)
        ]
    return np.swapaxes(np.concatenate(parts, axis=1), 0, 1)


def train(
    spec: ModelSpec,
    x: np.ndarray,
    y: np.ndarray,
    checkpoint_dir: str | Path,
    *,
    epochs: int = 20,
    batch_size: int = 32,
    learning_rate: float = 1e-2,
    seed: int = 0,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> Path:
    """Trains on the last step's prediction and saves the checkpoint and spec.

    Args:
        spec: the model.
        x: float32 [n, time_steps, input_depth], batch-major windows.
        y: int [n] class labels (classification), or float32 [n, num_outputs]
            targets (0/1 for binary).
        checkpoint_dir: where `model.ckpt*` and `spec.json` go (created).
        epochs, batch_size, learning_rate: Adam training settings.
        seed: seed of the initial weights (graph seed) and of the shuffling.
        on_epoch: called as on_epoch(epoch, mean loss, metric) after each epoch;
            the metric is accuracy (classification, binary) or mean absolute error.

    Returns:
        The checkpoint directory.
    """
    x = np.asarray(x, dtype=np.float32)
    expected = (spec.time_steps, spec.input_depth)
    if x.ndim != 3 or x.shape[1:] != expected:
        raise ValueError(f"`x` must be [n, {expected[0]}, {expected[1]}], got shape {x.shape}.")
    if len(y) != len(x):
        raise ValueError(f"`y` must have one row per sequence: {len(x)} expected, got {len(y)}.")
    model = build(spec, spec.time_steps, None, seed=seed)
    with model.graph.as_default():
        last = model.logits[-1]
        if spec.head == "classification":
            target = tf.compat.v1.placeholder(tf.int64, [None])
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=last)
            )
            metric = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(last, -1), target), tf.float32))
        elif spec.head == "binary":
            target = tf.compat.v1.placeholder(tf.float32, [None, spec.num_outputs])
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=last))
            metric = tf.reduce_mean(tf.cast(tf.equal(last > 0, target > 0.5), tf.float32))
        else:
            target = tf.compat.v1.placeholder(tf.float32, [None, spec.num_outputs])
            loss = tf.reduce_mean(tf.square(last - target))
            metric = tf.reduce_mean(tf.abs(last - target))
        train_op = tf.compat.v1.train.AdamOptimizer(learning_rate).minimize(loss)
        saver = tf.compat.v1.train.Saver(tf.compat.v1.global_variables(scope="rnn") + tf.compat.v1.global_variables(scope="head"))
        rng = np.random.default_rng(seed)
        with tf.compat.v1.Session(graph=model.graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for epoch in range(1, epochs + 1):
                order = rng.permutation(len(x))
                losses, metrics, sizes = [], [], []
                for start in range(0, len(x), batch_size):
                    rows = order[start : start + batch_size]
                    feed = {model.features: np.swapaxes(x[rows], 0, 1), target: y[rows]}
                    _, batch_loss, batch_metric = sess.run([train_op, loss, metric], feed)
                    losses.append(batch_loss)
                    metrics.append(batch_metric)
                    sizes.append(len(rows))
                mean_loss = float(np.average(losses, weights=sizes))
                mean_metric = float(np.average(metrics, weights=sizes))
                if on_epoch is not None:
                    on_epoch(epoch, mean_loss, mean_metric)
            out = Path(checkpoint_dir)
            out.mkdir(parents=True, exist_ok=True)
            saver.save(sess, str(out / CHECKPOINT_PREFIX))
            spec.save(out)
    return out
