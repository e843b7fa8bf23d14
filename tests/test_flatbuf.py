"""tflstm.flatbuf: the schema-free reader and the object-API edits agree, round trips, damage."""

from __future__ import annotations

import numpy as np
import pytest

import tflstm
from tflstm import flatbuf, fused_op
from tflstm.format import weights_fingerprint
from tfgraphs import build, randomize


@pytest.fixture(scope="module")
def step_model() -> bytes:
    built = build(lambda: [tflstm.TFLiteLSTMCell(6), tflstm.TFLiteLSTMCell(4)], 1, 1, 3)
    randomize(built, seed=2)
    return tflstm.convert.from_session(built.sess, [built.x], [built.y], streaming=True)


def test_reader_and_object_api_give_the_same_records(step_model):
    view, model = flatbuf.ModelView(step_model), flatbuf.read_model(step_model)
    assert view.num_tensors == len(model.subgraphs[0].tensors)
    for index in range(view.num_tensors):
        assert view.tensor_spec(index) == flatbuf.tensor_spec(model, index)
        assert view.is_variable(index) == bool(model.subgraphs[0].tensors[index].isVariable)
    assert view.op_names() == flatbuf.op_names(model)
    assert view.op_names().count(fused_op.OP_NAME) == 2
    assert list(view.inputs) == list(model.subgraphs[0].inputs)
    assert sorted(view.signatures["step"]["inputs"]) == ["lstm_0/c", "lstm_0/h", "lstm_1/c", "lstm_1/h", "x"]


def test_read_edit_read_round_trip(step_model):
    view = flatbuf.ModelView(step_model)
    model = flatbuf.read_model(step_model)
    flatbuf.add_signature(model, "step", [("features", view.inputs[0])], [("out", view.outputs[0])])
    flatbuf.add_signature(model, "extra", [("x", view.inputs[0])], [("y", view.outputs[0])])
    flatbuf.set_metadata(model, "note", b"first")
    flatbuf.set_metadata(model, "note", b"second")  # replaces, does not add
    model.subgraphs[0].tensors[view.outputs[0]].name = "renamed"
    edited = flatbuf.ModelView(flatbuf.write_model(model))
    assert sorted(edited.signatures) == ["extra", "step"]
    assert edited.signatures["step"] == {"inputs": {"features": view.inputs[0]}, "outputs": {"out": view.outputs[0]}}
    assert edited.metadata("note") == b"second"
    assert edited.tensor_spec(view.outputs[0]).name == "renamed"
    assert edited.operators == view.operators
    assert weights_fingerprint(edited) == weights_fingerprint(view)


def test_one_quantization_and_dtype_policy(step_model):
    model = flatbuf.read_model(step_model)
    index = flatbuf.ModelView(step_model).inputs[0]
    tensor = model.subgraphs[0].tensors[index]
    quantization = flatbuf.schema().QuantizationParametersT()
    quantization.scale, quantization.zeroPoint = [0.1, 0.2], [0, 0]
    tensor.quantization = quantization
    per_channel = flatbuf.ModelView(flatbuf.write_model(model))
    message = r"quantized with 2 scale\(s\) and 2 zero point\(s\); expected one of each"
    with pytest.raises(flatbuf.FlatbufferError, match=message):
        per_channel.tensor_spec(index)
    with pytest.raises(flatbuf.FlatbufferError, match=message):
        flatbuf.tensor_spec(model, index)
    tensor.quantization, tensor.type = None, 17  # INT4
    unknown = flatbuf.ModelView(flatbuf.write_model(model))
    for read in (lambda: unknown.tensor_spec(index), lambda: flatbuf.tensor_spec(model, index)):
        with pytest.raises(flatbuf.FlatbufferError, match="has tensor type 17, which tflstm does not read"):
            read()


def test_damaged_bytes_raise_flatbuffer_error_only(step_model):
    """Truncations and bit flips either read or raise FlatbufferError: never another exception."""
    rng = np.random.default_rng(0)
    outcomes = {"read": 0, "refused": 0}
    cases = [step_model[:n] for n in rng.integers(0, len(step_model), 150)]
    for position in rng.integers(0, len(step_model), 600):
        damaged = bytearray(step_model)
        damaged[position] ^= 1 << int(rng.integers(8))
        cases.append(bytes(damaged))
    for case in cases:
        try:
            view = flatbuf.ModelView(case)
            for index in range(view.num_tensors):
                view.tensor_data(index)
            outcomes["read"] += 1
        except flatbuf.FlatbufferError:
            outcomes["refused"] += 1
    assert outcomes["refused"] >= 150 and sum(outcomes.values()) == len(cases)


def test_layout_table_matches_the_schema_module():
    """tflite_layout.json (what `verify` walks with) is what tools/tflite_layout.py reads off the schema."""
    import importlib.util
    import json
    from importlib import resources
    from pathlib import Path

    tool = Path(__file__).resolve().parents[1] / "tools" / "tflite_layout.py"
    spec = importlib.util.spec_from_file_location("tflite_layout", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = json.loads(json.dumps(module.layout(flatbuf.schema())))
    assert json.loads(resources.files("tflstm").joinpath("tflite_layout.json").read_text()) == fresh
    assert fresh["tables"]["Tensor"]["4"] == "t:QuantizationParameters"
    assert fresh["tables"]["Operator"]["4"] == "u:BuiltinOptions"
    assert fresh["unions"]["BuiltinOptions"]["71"] == "UnidirectionalSequenceLSTMOptions"


def test_verify_refuses_what_would_make_an_interpreter_read_outside_the_file(step_model):
    """Offsets, indices and sizes a native reader would follow out of bounds."""
    view = flatbuf.ModelView(step_model)
    model = flatbuf.read_model(step_model)
    weight = next(i for i in range(view.num_tensors) if view.tensor_data(i))
    model.subgraphs[0].tensors[weight].shape = np.array([999, 999], np.int32)
    with pytest.raises(flatbuf.FlatbufferError, match=r"holds \d+ bytes of data; its type and shape \[999, 999\] need"):
        flatbuf.verify(flatbuf.write_model(model))
    model = flatbuf.read_model(step_model)
    model.subgraphs[0].operators[0].inputs = np.array([10_000, *model.subgraphs[0].operators[0].inputs[1:]], np.int32)
    with pytest.raises(flatbuf.FlatbufferError, match="name tensor\\(s\\) \\[10000\\]"):
        flatbuf.verify(flatbuf.write_model(model))
    model = flatbuf.read_model(step_model)
    model.subgraphs[0].operators[0].opcodeIndex = 77
    with pytest.raises(flatbuf.FlatbufferError, match="names operator code 77"):
        flatbuf.verify(flatbuf.write_model(model))
