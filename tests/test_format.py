"""Metadata schema: round trips, validation, and the flatbuffer entry it lives in."""

from __future__ import annotations

import dataclasses

import pytest

from tflstm import flatbuf
from tflstm.format import METADATA_NAME, ModelMetadata, StateSpec, TensorSpec, weights_fingerprint
from tflstm.format import read_metadata as format_metadata
from tflstm.runtime import ModelError, read_metadata


def _metadata(**changes) -> ModelMetadata:
    meta = ModelMetadata(
        kind="step", quantization="int8",
        inputs=(TensorSpec("x", (1, 1, 3), "float32"),),
        outputs=(TensorSpec("y", (1, 1, 2), "float32"),),
        states=(
            StateSpec("lstm_0/h", (1, 4), "int8", 0.01, -3, layer="lstm_0", kind="h", tensor_index=7),
            StateSpec("lstm_0/c", (1, 4), "int16", 0.001, 0, layer="lstm_0", kind="c", tensor_index=8),
        ),
        fingerprint="ab" * 32, time_steps=1, batch_size=1, converter={"tflstm": "0.1.0"},
    )
    return dataclasses.replace(meta, **changes)


def test_json_round_trip():
    meta = _metadata()
    assert ModelMetadata.from_json(meta.to_json()) == meta


def test_other_format_version_is_refused():
    data = _metadata().to_dict()
    data["format_version"] = 99
    with pytest.raises(ValueError, match="format version 99 is not supported; this tflstm reads version 2"):
        ModelMetadata.from_dict(data)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"kind": "window"}, "Model kind must be one of"),
        ({"quantization": "int4"}, r"Quantization must be one of .* got 'int4'"),
    ],
)
def test_bad_fields_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        _metadata(**changes)


def test_scale_without_zero_point_is_refused():
    with pytest.raises(ValueError, match="both scale and zero_point"):
        TensorSpec("x", (1,), "int8", scale=0.1)


def test_metadata_entry_is_written_once_and_read_without_schema(tmp_path):
    """set_metadata replaces an existing entry; the runtime's raw reader finds it."""
    from tfgraphs import build
    import tflstm

    built = build(lambda: [tflstm.TFLiteLSTMCell(4)], 2, 1, 3)
    content = tflstm.convert.from_session(built.sess, [built.x], [built.y])
    model = flatbuf.read_model(content)
    fingerprint = weights_fingerprint(flatbuf.ModelView(content))
    flatbuf.set_metadata(model, METADATA_NAME, _metadata().to_json().encode())
    rewritten = flatbuf.write_model(model)
    parsed = flatbuf.read_model(rewritten)
    assert [m.name for m in parsed.metadata].count(METADATA_NAME.encode()) == 1
    assert format_metadata(rewritten) == _metadata()
    with pytest.raises(ModelError, match="holds no checksum"):  # the runtime checks the file, too
        read_metadata(rewritten)
    assert weights_fingerprint(flatbuf.ModelView(rewritten)) == fingerprint


def test_model_without_metadata_is_refused():
    from tfgraphs import build
    import tensorflow as tf
    import tflstm

    built = build(lambda: [tflstm.TFLiteLSTMCell(4)], 2, 1, 3)
    plain = tf.compat.v1.lite.TFLiteConverter.from_session(built.sess, [built.x], [built.y]).convert()
    with pytest.raises(ModelError, match="has no tflstm metadata"):
        read_metadata(plain)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["inputs"][0].update(tensor_index="21"), "tensor_index must be an int >= 0, got '21'"),
        (lambda d: d["inputs"][0].update(shape=[1, 1.5, 3]), "shape must be a list of non-negative ints"),
        (lambda d: d["states"][0].update(scale=-0.1), "scale must be a finite number > 0, got -0.1"),
        (lambda d: d["states"][0].update(kind="x"), "State kind must be one of"),
        (lambda d: d["inputs"][0].update(extra=1), r"Unknown TensorSpec field\(s\) \['extra'\]"),
        (lambda d: d["outputs"][0].pop("dtype"), r"Missing TensorSpec field\(s\) \['dtype'\]"),
        (lambda d: d.update(normalization={"mean": [0, 0, float("nan")], "std": [1, 1, 1]}), "3 finite numbers"),
        (lambda d: d.update(normalization={"mean": [0, 0, 0], "std": [1, 0, 1]}), "std values must be > 0"),
        (lambda d: d.update(batch_size=True), "`batch_size` must be an int >= 1, got True"),
        (lambda d: d.update(fingerprint="xyz"), "`fingerprint` must be 64 hex digits"),
        (lambda d: d.update(states=d["states"][:1]), "an h and a c state per LSTM layer"),
        (lambda d: d.update(inputs={}), "`inputs` must be a list"),
        (lambda d: d.update(converter={"tflstm": 1}), "`converter` must map names to version strings"),
    ],
)
def test_hostile_metadata_fields_are_refused_with_a_message(edit, message):
    from tflstm.format import MetadataError

    data = _metadata().to_dict()
    edit(data)
    with pytest.raises(MetadataError, match=message):
        ModelMetadata.from_dict(data)


@pytest.mark.parametrize("text", [b"[]", b"\xff\xfe", b"{" * 5000 + b"}" * 5000, b'{"format_version": 2}'])
def test_metadata_that_is_not_the_schema_is_a_metadata_error(text):
    from tflstm.format import MetadataError

    with pytest.raises(MetadataError):
        ModelMetadata.from_json(text)
