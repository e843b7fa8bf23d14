"""Graph builders and TFLite runners shared by the tests (main venv only)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import tflstm

tf.get_logger().setLevel("ERROR")

CellsFactory = Callable[[], list[tflstm.TFLiteLSTMCell]]


@dataclasses.dataclass
class Built:
    graph: tf.Graph
    sess: tf.compat.v1.Session
    x: tf.Tensor
    y: tf.Tensor
    final_state: tuple


def build(
    cells: CellsFactory, time_steps: int, batch: int, depth: int, initial_state: list | None = None
) -> Built:
    """A graph: placeholder `x` [T, B, D] -> dynamic_rnn -> identity `y`.

    `initial_state`: numpy (c, h) pairs per layer, fed as constants; default zero.
    """
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [time_steps, batch, depth], name="x")
        if initial_state is not None:
            initial_state = [tflstm.LSTMStateTuple(tf.constant(c), tf.constant(h)) for c, h in initial_state]
        outputs, final_state = tflstm.dynamic_rnn(cells(), x, initial_state=initial_state)
        y = tf.identity(outputs, name="y")
        sess = tf.compat.v1.Session(graph=graph)
        sess.run(tf.compat.v1.global_variables_initializer())
    return Built(graph, sess, x, y, final_state)


def randomize(built: Built, seed: int, scale: float = 0.6) -> None:
    """Sets every variable (biases and peepholes included) to uniform(-scale, scale)."""
    rng = np.random.default_rng(seed)
    with built.graph.as_default():
        for var in tf.compat.v1.global_variables():
            built.sess.run(var.assign(rng.uniform(-scale, scale, var.shape).astype(np.float32)))


def copy_weights(src: Built, dst: Built) -> None:
    """Copies variables by name from one graph to another (e.g. T=7 -> T=1)."""
    with src.graph.as_default():
        values = {v.op.name: src.sess.run(v) for v in tf.compat.v1.global_variables()}
    with dst.graph.as_default():
        for var in tf.compat.v1.global_variables():
            dst.sess.run(var.assign(values[var.op.name]))


def run_signature(model: bytes, key: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
    interpreter = Interpreter(model_content=model)
    return interpreter.get_signature_runner(key)(**inputs)


def step_through(model: bytes, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Runs a step model over x [T, B, D], carrying the state through the signature."""
    runner = Interpreter(model_content=model).get_signature_runner("step")
    details = runner.get_input_details()
    state = {k: np.zeros(d["shape"], d["dtype"]) for k, d in details.items() if "/" in k}
    outputs = []
    for t in range(x.shape[0]):
        result = runner(x=x[t : t + 1], **state)
        state = {k: result[k] for k in state}
        outputs.append(result["y"])
    return np.concatenate(outputs), state

