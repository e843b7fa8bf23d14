"""A model builder for the common case: stacked `TFLiteLSTMCell` layers + a dense head.

The head is applied at every time step, so the streaming (one step) model gives
a prediction after every sample; training uses the last step's prediction, or
every step's (`every_step=True`). The spec (`tflstm.train.spec`) travels with the
checkpoint as `spec.json`, so the converter can rebuild the graph for any number
of time steps and batch size. Inputs are raw: the spec's normalization is
applied to them here, and recorded in the converted models for the runtime.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tflstm.normalization import apply as normalize
from tflstm.train.cell import LSTMStateTuple, TFLiteLSTMCell
from tflstm.train.rnn import dynamic_rnn
from tflstm.train.spec import CHECKPOINT_PREFIX, HEADS, SPEC_FILE, LayerSpec, ModelSpec

__all__ = [
    "CHECKPOINT_PREFIX", "HEADS", "SPEC_FILE", "LayerSpec", "ModelGraph", "ModelSpec", "build", "make_cell",
    "predict", "restore", "train",
]

INPUT_NAME = "features"
OUTPUT_NAME = "predictions"


def make_cell(layer: LayerSpec, name: str) -> TFLiteLSTMCell:
    """A new cell with the arguments of `layer`."""
    return TFLiteLSTMCell(name=name, **dataclasses.asdict(layer))


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
        cells = [make_cell(layer, f"lstm_{k}") for k, layer in enumerate(spec.layers)]
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
    """TensorFlow predictions at every step: raw x float [n, time, depth] -> [n, time, outputs].

    The spec's normalization is applied to x first, as the runtime does.
    """
    model, sess = restore(checkpoint_dir, np.shape(x)[1], None)
    x = normalize(x, ModelSpec.load(checkpoint_dir).normalization)
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
    every_step: bool = False,
    clip_norm: float | None = None,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> Path:
    """Trains on the last step's prediction (or every step's) and saves the checkpoint and spec.

    Args:
        spec: the model; its normalization, if any, is applied to `x`.
        x: float [n, time_steps, input_depth], batch-major windows of raw inputs.
        y: int [n] class labels (classification), or float32 [n, num_outputs]
            targets (0/1 for binary).
        checkpoint_dir: where `model.ckpt*` and `spec.json` go (created).
        epochs, batch_size, learning_rate: Adam training settings.
        seed: seed of the initial weights (graph seed) and of the shuffling.
        every_step: the loss is the mean over every step's prediction of the
            window's target, not only the last step's: for streams that need an
            answer at any time (the target must hold for the whole window).
            Default: False.
        clip_norm: clip the gradients to this global norm (steadies training on
            long windows). Default: None (no clipping).
        on_epoch: called as on_epoch(epoch, mean loss, metric) after each epoch;
            the metric (of the last step) is accuracy (classification, binary) or
            mean absolute error.

    Returns:
        The checkpoint directory.
    """
    expected = (spec.time_steps, spec.input_depth)
    if np.ndim(x) != 3 or np.shape(x)[1:] != expected:
        raise ValueError(f"`x` must be [n, {expected[0]}, {expected[1]}], got shape {np.shape(x)}.")
    if len(y) != len(x):
        raise ValueError(f"`y` must have one row per sequence: {len(x)} expected, got {len(y)}.")
    x = normalize(x, spec.normalization)
    model = build(spec, spec.time_steps, None, seed=seed)
    with model.graph.as_default():
        scored = model.logits if every_step else model.logits[-1:]
        last = model.logits[-1]
        if spec.head == "classification":
            target = tf.compat.v1.placeholder(tf.int64, [None])
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=tf.broadcast_to(target, tf.shape(scored)[:2]), logits=scored,
            ))
            metric = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(last, -1), target), tf.float32))
        elif spec.head == "binary":
            target = tf.compat.v1.placeholder(tf.float32, [None, spec.num_outputs])
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.broadcast_to(target, tf.shape(scored)), logits=scored,
            ))
            metric = tf.reduce_mean(tf.cast(tf.equal(last > 0, target > 0.5), tf.float32))
        else:
            target = tf.compat.v1.placeholder(tf.float32, [None, spec.num_outputs])
            loss = tf.reduce_mean(tf.square(scored - target))
            metric = tf.reduce_mean(tf.abs(last - target))
        optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate)
        gradients, variables = zip(*optimizer.compute_gradients(loss))
        if clip_norm is not None:
            gradients, _ = tf.clip_by_global_norm(gradients, clip_norm)
        train_op = optimizer.apply_gradients(zip(gradients, variables))
        saver = tf.compat.v1.train.Saver(
            tf.compat.v1.global_variables(scope="rnn") + tf.compat.v1.global_variables(scope="head")
        )
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
