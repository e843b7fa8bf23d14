"""Clear errors for misuse of the training API and the converter."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tflstm
from tflstm.convert import ConversionError
from tflstm.convert import checks
from tflstm import flatbuf, fused_op


def _placeholder(shape):
    return tf.compat.v1.placeholder(tf.float32, shape)


def test_time_major_false_is_rejected():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=r"time-major only.*got time_major=False"):
            tflstm.dynamic_rnn(tflstm.TFLiteLSTMCell(4), _placeholder([3, 1, 2]), time_major=False)


def test_rank_2_input_is_rejected():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=r"\[time, batch, depth\] \(rank 3\), got shape \(3, 2\) \(rank 2\)"):
            tflstm.dynamic_rnn(tflstm.TFLiteLSTMCell(4), _placeholder([3, 2]))


def test_unknown_depth_is_rejected():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="depth.*must be known"):
            tflstm.dynamic_rnn(tflstm.TFLiteLSTMCell(4), _placeholder([3, 1, None]))


def test_control_flow_v1_is_rejected_with_the_fix():
    tf.compat.v1.disable_control_flow_v2()
    try:
        with tf.Graph().as_default():
            with pytest.raises(RuntimeError, match=r"control flow v2.*enable_control_flow_v2\(\)"):
                tflstm.dynamic_rnn(tflstm.TFLiteLSTMCell(4), _placeholder([3, 1, 2]))
    finally:
        tf.compat.v1.enable_control_flow_v2()


def test_eager_mode_is_rejected():
    with pytest.raises(RuntimeError, match="tf.Graph\\(\\).as_default"):
        tflstm.dynamic_rnn(tflstm.TFLiteLSTMCell(4), np.zeros([3, 1, 2], np.float32))


def test_wrong_initial_state_count_is_rejected():
    with tf.Graph().as_default():
        state = tflstm.LSTMStateTuple(tf.zeros([1, 4]), tf.zeros([1, 4]))
        cells = [tflstm.TFLiteLSTMCell(4), tflstm.TFLiteLSTMCell(4)]
        with pytest.raises(ValueError, match="expected 2, got 1"):
            tflstm.dynamic_rnn(cells, _placeholder([3, 1, 2]), initial_state=[state])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_units": 0}, "`num_units` must be a positive int, got 0"),
        ({"num_units": 4, "proj_clip": 1.0}, "`proj_clip` needs a projection"),
        ({"num_units": 4, "cell_clip": -1.0}, "`cell_clip` must be a positive number or None, got -1.0"),
    ],
)
def test_cell_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tflstm.TFLiteLSTMCell(**kwargs)


def test_graph_without_tflstm_loop_is_rejected():
    with tf.Graph().as_default() as graph:
        x = _placeholder([1, 2])
        y = tf.identity(x * 2.0)
        with tf.compat.v1.Session(graph=graph) as sess:
            with pytest.raises(ValueError, match="No tflstm.dynamic_rnn feeds the requested outputs"):
                tflstm.convert.from_session(sess, [x], [y])


def test_conversion_arguments_are_checked():
    with tf.Graph().as_default() as graph:
        x = tf.compat.v1.placeholder(tf.float32, [None, 1, 3], name="x")
        out, final_state = tflstm.dynamic_rnn(tflstm.TFLiteLSTMCell(4), x)
        one = tf.compat.v1.placeholder(tf.float32, [1, 1, 3], name="one")
        step_out, step_state = tflstm.dynamic_rnn(tflstm.TFLiteLSTMCell(4, name="other"), one)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            with pytest.raises(ValueError, match=r"static shapes.*got \[\[None, 1, 3\]\]"):
                tflstm.convert.from_session(sess, [x], [out])
            with pytest.raises(ValueError, match="outputs every layer's state already"):
                tflstm.convert.from_session(sess, [one], [step_out, step_state[0].h], streaming=True)
            with pytest.raises(ValueError, match="needs a `representative_dataset`"):
                tflstm.convert.from_session(sess, [one], [step_out], quantize="int8")
            with pytest.raises(ValueError, match="`quantize` must be one of"):
                tflstm.convert.from_session(sess, [one], [step_out], quantize="int4")
            # The graph's other loop does not feed these outputs: one fused op is expected.
            model = flatbuf.read_model(tflstm.convert.from_session(sess, [one], [step_out]))
            assert flatbuf.op_names(model).count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1


def test_unfused_model_fails_loudly_with_the_op_list():
    """A Keras 3 LSTM converts to a WHILE loop: the fused-op check names what it found."""
    inputs = tf.keras.Input(shape=(5, 3), batch_size=1)
    model = tf.keras.Model(inputs, tf.keras.layers.LSTM(8)(inputs))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    parsed = flatbuf.read_model(converter.convert())
    with pytest.raises(ConversionError, match=r"Expected 1 UNIDIRECTIONAL_SEQUENCE_LSTM.*produced 0.*WHILE"):
        checks.fused_lstm_ops(parsed, expected=1)


def test_op_newer_than_oldest_runtime_is_refused():
    with tf.Graph().as_default() as graph:
        x = tf.compat.v1.placeholder(tf.float32, [2, 1, 3], name="x")
        out, _ = tflstm.dynamic_rnn(tflstm.TFLiteLSTMCell(4), x)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            parsed = flatbuf.read_model(tflstm.convert.from_session(sess, [x], [out]))
    code = next(c for c in parsed.operatorCodes if flatbuf.op_code_name(c) == "UNIDIRECTIONAL_SEQUENCE_LSTM")
    checks.check_op_versions(parsed)  # as converted: loadable
    code.version = 5
    with pytest.raises(ConversionError, match=r"UNIDIRECTIONAL_SEQUENCE_LSTM v5 \(max v4\)"):
        checks.check_op_versions(parsed)


def test_not_a_flatbuffer_is_rejected():
    with pytest.raises(ValueError, match="Expected a .tflite flatbuffer"):
        flatbuf.read_model(b"not a model at all")


def test_int8_cell_state_scale_is_capped_where_the_kernel_works():
    """A cell-state scale above 2^-9 (|c| > 64) makes the integer kernel compute garbage."""
    from tflstm.convert import fused_layers

    with tf.Graph().as_default() as graph:
        x = tf.compat.v1.placeholder(tf.float32, [3, 1, 2], name="x")
        out, _ = tflstm.dynamic_rnn([tflstm.TFLiteLSTMCell(4), tflstm.TFLiteLSTMCell(3)], x)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            data = np.random.default_rng(0).normal(size=(20, 3, 1, 2)).astype(np.float32)
            model = tflstm.convert.from_session(
                sess, [x], [out], quantize="int8", representative_dataset=lambda: ([d] for d in data)
            )
    parsed = flatbuf.read_model(model)
    ops = checks.fused_lstm_ops(parsed, expected=2)
    cell_index = int(ops[1].inputs[fused_op.CELL_STATE])
    cell = parsed.subgraphs[0].tensors[cell_index]
    assert flatbuf.tensor_spec(parsed, cell_index).dtype == "int16"
    assert fused_layers.limit_cell_state_scales(parsed, ops) == []  # calibrated within range
    cell.quantization.scale = np.array([2.0**-7], np.float32)
    (message,) = fused_layers.limit_cell_state_scales(parsed, ops)
    assert "fused LSTM op 1: calibrated cell state range +-256 exceeds the +-64" in message
    assert float(cell.quantization.scale[0]) == 2.0**-9


def test_same_seed_gives_the_same_initial_weights():
    from tflstm.train import builder

    spec = builder.ModelSpec(input_depth=3, layers=(builder.LayerSpec(5),), head="regression", num_outputs=2, time_steps=4)

    def initial(seed):
        model = builder.build(spec, spec.time_steps, None, seed=seed)
        with model.graph.as_default(), tf.compat.v1.Session(graph=model.graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return {v.op.name: sess.run(v) for v in tf.compat.v1.global_variables()}

    first, again, other = initial(0), initial(0), initial(1)
    assert sorted(first) == sorted(again)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name], err_msg=name)
    assert any(not np.array_equal(first[name], other[name]) for name in first if "kernel" in name or "_w" in name)
