"""Opening a model for the runtime: bytes or path -> checked flatbuffer and its metadata.

`tflstm.flatbuf` reads the flatbuffer and `tflstm.format` the metadata; this
module turns their errors into `ModelError`, the runtime's error for models.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tflstm.flatbuf import FlatbufferError, ModelView, builtin_name
from tflstm.format import METADATA_NAME, MetadataError, ModelMetadata, derive_metadata
from tflstm.format import read_metadata as read_format_metadata
from tflstm.runtime.errors import ModelError


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model file the runtime may hand to an interpreter.

    Attributes:
        content: the `.tflite` bytes.
        source: what interpreters load: the path (memory-mapped by the
            interpreter) or the bytes.
        metadata: the tflstm metadata, embedded or derived from the fused ops.
    """

    content: bytes
    source: str | bytes
    metadata: ModelMetadata


def read_metadata(content: bytes) -> ModelMetadata:
    """The tflstm metadata embedded in `.tflite` bytes.

    Raises:
        ModelError: the bytes are not a readable model, or carry no readable metadata.
    """
    try:
        return read_format_metadata(content)
    except (FlatbufferError, MetadataError) as err:
        raise ModelError(str(err)) from err


UNFUSED_LOOP_OPS = ("WHILE", "VAR_HANDLE")
"""Ops of an LSTM that TensorFlow's converter did not fuse (Keras 3, or a stateful or
state-returning tf-keras LSTM): a loop whose state the runtime cannot carry."""


def refuse_unfused_loops(view: ModelView) -> None:
    """Raises ModelError for a model whose LSTM is an unfused `WHILE` loop.

    Raises:
        ModelError: saying to convert the Keras model with `tflstm.convert.from_keras`.
    """
    found = sorted({builtin_name(code) for code in view.builtin_codes} & set(UNFUSED_LOOP_OPS))
    if found:
        raise ModelError(
            f"The model runs its LSTM as an unfused loop ({', '.join(found)} ops), as TensorFlow's converter "
            "makes of Keras 3 LSTMs and of stateful=True tf-keras LSTMs: the runtime cannot carry its state. "
            "Convert the Keras model with tflstm.convert.from_keras instead (one fused op per LSTM layer)."
        )


def load_model(model: str | Path | bytes) -> LoadedModel:
    """Reads a model from a path or bytes, with its metadata (derived for stock fused models).

    Raises:
        ModelError: not a readable model, or not one the runtime can stream.
        OSError: the file cannot be read.
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        content = bytes(model)
        source: str | bytes = content
    else:
        content = Path(model).read_bytes()
        source = str(model)
    try:
        view = ModelView(content)
        if view.metadata(METADATA_NAME) is None:
            refuse_unfused_loops(view)
            metadata = derive_metadata(view)
        else:
            metadata = read_format_metadata(view)
    except (FlatbufferError, MetadataError) as err:
        raise ModelError(str(err)) from err
    return LoadedModel(content, source, metadata)
