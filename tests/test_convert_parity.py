"""Float32 parity of converted models against TensorFlow, and fused-op counts."""

from __future__ import annotations

import numpy as np
import pytest

import tflstm
from tflstm import flatbuf, fused_op
from tflstm.format import TOLERANCES, ModelMetadata, read_metadata, weights_fingerprint
from tfgraphs import build, copy_weights, randomize, run_signature, step_through

T, B, D = 9, 2, 5
FLOAT32_TOL = TOLERANCES["float32"]


def single_layer():
    return [tflstm.TFLiteLSTMCell(24)]


def three_layers():
    """Peepholes, projection with clip and cell clip, across a stack of three."""
    return [
        tflstm.TFLiteLSTMCell(32, use_peepholes=True, cell_clip=0.4),
        tflstm.TFLiteLSTMCell(20, num_proj=12, proj_clip=0.15),
        tflstm.TFLiteLSTMCell(16, use_peepholes=True, cell_clip=0.3, num_proj=8, proj_clip=0.2),
    ]


CASES = {"single_layer": (single_layer, 1), "three_layers": (three_layers, 3)}


@pytest.fixture(params=sorted(CASES))
def case(request):
    factory, layers = CASES[request.param]
    seq = build(factory, T, B, D)
    randomize(seq, seed=len(request.param))
    x = np.random.default_rng(1).normal(size=(T, B, D)).astype(np.float32) * 2
    return factory, layers, seq, x


def test_sequence_model_matches_tensorflow(case):
    _, layers, seq, x = case
    expected = seq.sess.run(seq.y, {seq.x: x})
    model = tflstm.convert.from_session(seq.sess, [seq.x], [seq.y])
    parsed = flatbuf.read_model(model)
    assert flatbuf.op_names(parsed).count(fused_op.OP_NAME) == layers
    assert "WHILE" not in flatbuf.op_names(parsed)
    got = run_signature(model, "sequence", x=x)["y"]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=FLOAT32_TOL, rtol=0)


def test_clips_are_active_in_reference():
    """The three-layer case must exercise the clips, or parity would not test them."""
    seq = build(three_layers, T, B, D)
    randomize(seq, seed=len("three_layers"))
    x = np.random.default_rng(1).normal(size=(T, B, D)).astype(np.float32) * 2
    c0 = seq.sess.run(seq.final_state[0].c, {seq.x: x})
    y = seq.sess.run(seq.y, {seq.x: x})
    assert np.isclose(np.abs(c0).max(), 0.4)
    assert np.isclose(np.abs(y).max(), 0.2)


def test_final_state_outputs_match_tensorflow(case):
    _, _, seq, x = case
    wanted = [seq.y] + [t for layer_state in seq.final_state for t in (layer_state.h, layer_state.c)]
    expected = seq.sess.run(wanted, {seq.x: x})
    model = tflstm.convert.from_session(seq.sess, [seq.x], wanted)
    got = run_signature(model, "sequence", x=x)
    names = ["y"] + [f"lstm_{k}/{kind}" for k in range(len(seq.final_state)) for kind in "hc"]
    assert sorted(got) == sorted(names)
    for name, value in zip(names, expected):
        np.testing.assert_allclose(got[name], value, atol=FLOAT32_TOL, rtol=0, err_msg=name)


def test_final_state_only_outputs(case):
    _, _, seq, x = case
    top = seq.final_state[-1].h
    model = tflstm.convert.from_session(seq.sess, [seq.x], [top])
    got = run_signature(model, "sequence", x=x)
    assert list(got) == [f"lstm_{len(seq.final_state) - 1}/h"]
    np.testing.assert_allclose(got[list(got)[0]], seq.sess.run(top, {seq.x: x}), atol=FLOAT32_TOL)


def test_streaming_model_equals_sequence_model_and_final_state(case):
    factory, layers, seq, x = case
    expected, final_state = seq.sess.run([seq.y, seq.final_state], {seq.x: x})
    step = build(factory, 1, B, D)
    copy_weights(seq, step)
    model = tflstm.convert.from_session(step.sess, [step.x], [step.y], streaming=True)
    assert flatbuf.op_names(flatbuf.read_model(model)).count(fused_op.OP_NAME) == layers
    outputs, state = step_through(model, x)
    np.testing.assert_allclose(outputs, expected, atol=FLOAT32_TOL, rtol=0)
    sequence_model = tflstm.convert.from_session(seq.sess, [seq.x], [seq.y])
    np.testing.assert_allclose(
        outputs, run_signature(sequence_model, "sequence", x=x)["y"], atol=FLOAT32_TOL, rtol=0
    )
    for k, layer_state in enumerate(final_state):
        np.testing.assert_allclose(state[f"lstm_{k}/c"], layer_state.c, atol=FLOAT32_TOL, rtol=0)
        np.testing.assert_allclose(state[f"lstm_{k}/h"], layer_state.h, atol=FLOAT32_TOL, rtol=0)


def test_dynamic_rnn_final_state_continues_a_sequence(case):
    """final_state is correct in TensorFlow: feeding it back continues the sequence."""
    factory, _, seq, x = case
    half = T // 2
    first = build(factory, half, B, D)
    copy_weights(seq, first)
    state = first.sess.run(first.final_state, {first.x: x[:half]})
    second = build(factory, T - half, B, D, initial_state=[(s.c, s.h) for s in state])
    copy_weights(seq, second)
    full = seq.sess.run(seq.y, {seq.x: x})
    rest = second.sess.run(second.y, {second.x: x[half:]})
    np.testing.assert_allclose(rest, full[half:], atol=1e-6, rtol=0)


def test_metadata_describes_step_model(case):
    factory, layers, seq, _ = case
    step = build(factory, 1, B, D)
    copy_weights(seq, step)
    model = tflstm.convert.from_session(step.sess, [step.x], [step.y], streaming=True)
    meta = read_metadata(model)
    assert meta.kind == "step" and meta.time_steps == 1 and meta.batch_size == B
    assert [s.name for s in meta.states] == [f"lstm_{k}/{kind}" for k in range(layers) for kind in "hc"]
    assert meta.fingerprint == weights_fingerprint(flatbuf.ModelView(model))
    assert ModelMetadata.from_json(meta.to_json()) == meta
    parsed = flatbuf.read_model(model)
    for spec in meta.states:
        tensor = parsed.subgraphs[0].tensors[spec.tensor_index]
        assert tensor.isVariable and flatbuf.tensor_name(tensor) == spec.name
