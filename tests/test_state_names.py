"""Graphs with several dynamic_rnn calls: unique state names that name their own layer's state, and op names
that do not clash with the loops' step counters."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tflstm
from tflstm.format import TOLERANCES, read_metadata
from tflstm.runtime import StreamingModel

DEPTH, UNITS = 3, 8


def _branches(names: tuple[str | None, str | None], time_steps: int = 1):
    """x -> two parallel single-layer dynamic_rnn calls of equal size -> concat."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [time_steps, 1, DEPTH], name="x")
        cells = [tflstm.TFLiteLSTMCell(UNITS, name=name) for name in names]
        results = [tflstm.dynamic_rnn([cell], x) for cell in cells]
        y = tf.concat([outputs for outputs, _ in results], axis=-1, name="y")
        sess = tf.compat.v1.Session(graph=graph)
        sess.run(tf.compat.v1.global_variables_initializer())
        rng = np.random.default_rng(0)
        for var in tf.compat.v1.global_variables():
            sess.run(var.assign(rng.uniform(-0.6, 0.6, var.shape).astype(np.float32)))
    return sess, x, y, cells, [final for _, final in results]


def test_layers_sharing_a_name_across_dynamic_rnn_calls_are_refused():
    sess, x, y, _, _ = _branches(("lstm", "lstm"))
    with sess, pytest.raises(ValueError, match=r"unique names.*\['lstm'\].*distinct `name=`"):
        tflstm.convert.from_session(sess, [x], [y], streaming=True)


def test_unnamed_layers_are_numbered_across_dynamic_rnn_calls():
    sess, x, y, cells, _ = _branches((None, None))
    with sess:
        model = tflstm.convert.from_session(sess, [x], [y], streaming=True)
    assert [cell.name for cell in cells] == ["lstm_0", "lstm_1"]
    assert [s.name for s in read_metadata(model).states] == ["lstm_0/h", "lstm_0/c", "lstm_1/h", "lstm_1/c"]


def test_each_state_name_holds_its_own_layers_state():
    """Equal-sized parallel layers: the shape check cannot tell them apart, the weight names can."""
    steps = 6
    seq_sess, seq_x, _, cells, finals = _branches(("beta", "alpha"), time_steps=steps)
    step_sess, step_x, step_y, _, _ = _branches(("beta", "alpha"))  # same seed: same weights
    xs = np.random.default_rng(1).normal(size=(steps, 1, DEPTH)).astype(np.float32)
    with seq_sess:
        expected = seq_sess.run({cell.name: final[0] for cell, final in zip(cells, finals)}, {seq_x: xs})
    with step_sess:
        model = StreamingModel(tflstm.convert.from_session(step_sess, [step_x], [step_y], streaming=True))
    for row in xs[:, 0]:
        model.step(row)
    for name in ("alpha", "beta"):
        np.testing.assert_allclose(model.state[f"{name}/h"], expected[name].h, atol=TOLERANCES["float32"], rtol=0)
        np.testing.assert_allclose(model.state[f"{name}/c"], expected[name].c, atol=TOLERANCES["float32"], rtol=0)
    assert np.abs(expected["alpha"].c - expected["beta"].c).max() > 0.1  # the layers differ


def test_ops_named_like_the_loops_step_counter_are_refused_with_the_fix():
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 1, DEPTH], name="x")
        outputs, _ = tflstm.dynamic_rnn([tflstm.TFLiteLSTMCell(UNITS)], x)
        y = tf.identity(outputs + 1.0, name="y")  # `add` and `add/y`, at the graph's top level
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            with pytest.raises(ValueError, match=r"named \['add/y'\].*step counter.*tf.name_scope"):
                tflstm.convert.from_session(sess, [x], [y], streaming=True)
