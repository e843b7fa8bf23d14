"""Reads tflstm metadata from `.tflite` bytes with only the `flatbuffers` package.

The runtime must work where no TFLite schema module is installed (tflite-runtime
ships none), so this walks the few tables it needs by their field slots in the
TFLite schema: Model.metadata (slot 6) -> Metadata{name (0), buffer (1)} ->
Model.buffers (slot 4) -> Buffer.data (slot 0).
"""

from __future__ import annotations

from flatbuffers import table as fb_table
from flatbuffers.number_types import Uint32Flags

from tflstm.format import METADATA_NAME, ModelMetadata
from tflstm.runtime.errors import ModelError

_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_METADATA_NAME, _METADATA_BUFFER = 0, 1
_BUFFER_DATA = 0


def _field(tab: fb_table.Table, slot: int) -> int:
    return tab.Offset(4 + 2 * slot)


def _vector_table(tab: fb_table.Table, slot: int, index: int) -> fb_table.Table:
    offset = _field(tab, slot)
    start = tab.Vector(offset) + 4 * index
    return fb_table.Table(tab.Bytes, tab.Indirect(start))


def _vector_len(tab: fb_table.Table, slot: int) -> int:
    offset = _field(tab, slot)
    return tab.VectorLen(offset) if offset else 0


def read_metadata(model: bytes) -> ModelMetadata:
    """The tflstm metadata of a model; ModelError if it has none or is not a .tflite."""
    if len(model) < 8 or model[4:8] != b"TFL3":
        raise ModelError(
            f"Expected a .tflite flatbuffer (identifier b'TFL3' at byte 4), got {len(model)} "
            f"bytes starting with {bytes(model[:8])!r}."
        )
    model = bytes(model)
    root = fb_table.Table(model, int.from_bytes(model[0:4], "little"))
    for k in range(_vector_len(root, _MODEL_METADATA)):
        entry = _vector_table(root, _MODEL_METADATA, k)
        name_offset = _field(entry, _METADATA_NAME)
        if not name_offset or entry.String(entry.Pos + name_offset).decode() != METADATA_NAME:
            continue
        buffer_offset = _field(entry, _METADATA_BUFFER)
        buffer_index = entry.Get(Uint32Flags, entry.Pos + buffer_offset) if buffer_offset else 0
        buffer = _vector_table(root, _MODEL_BUFFERS, buffer_index)
        data_offset = _field(buffer, _BUFFER_DATA)
        if not data_offset:
            break
        start = buffer.Vector(data_offset)
        data = bytes(model[start : start + buffer.VectorLen(data_offset)])
        try:
            return ModelMetadata.from_json(data)
        except (ValueError, TypeError, KeyError) as err:
            raise ModelError(f"The model's tflstm metadata is unreadable: {err}") from err
    raise ModelError("The model has no tflstm metadata: convert it with tflstm.convert.from_session.")
