"""Metadata schema: round trips, validation, and the flatbuffer entry it lives in."""

from __future__ import annotations

import dataclasses

import pytest

from tflstm import flatbuf
from tflstm.format import METADATA_NAME, ModelMetadata, StateSpec, TensorSpec, weights_fingerprint
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
    with pytest.raises(ValueError, match="format version 99 is not supported; this tflstm reads version 1"):
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
    assert read_metadata(rewritten) == _metadata()
    assert weights_fingerprint(flatbuf.ModelView(rewritten)) == fingerprint


def test_model_without_metadata_is_refused():
    from tfgraphs import build
    import tensorflow as tf
    import tflstm

    built = build(lambda: [tflstm.TFLiteLSTMCell(4)], 2, 1, 3)
    plain = tf.compat.v1.lite.TFLiteConverter.from_session(built.sess, [built.x], [built.y]).convert()
    with pytest.raises(ModelError, match="has no tflstm metadata"):
        read_metadata(plain)
