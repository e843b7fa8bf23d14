"""Opening a model for the runtime: bytes or path -> verified flatbuffer and its metadata.

Nothing reaches an interpreter before it passed: the flatbuffer walk
(`tflstm.flatbuf.verify`), the file checksum and the metadata-against-flatbuffer
checks (`tflstm.integrity`). Every failure is a `ModelError` saying what is wrong.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from tflstm.flatbuf import FlatbufferError, ModelView, builtin_name
from tflstm.format import (
    METADATA_NAME, SEQUENCE_SIGNATURE, STEP_SIGNATURE, MetadataError, ModelMetadata, derive_metadata,
)
from tflstm.format import read_metadata as read_format_metadata
from tflstm.integrity import check_checksum, check_metadata
from tflstm.runtime.errors import ModelError


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A verified model file the runtime may hand to interpreters.

    Attributes:
        content: the `.tflite` bytes that were verified (the runtime's own copy).
        view: the verified flatbuffer view of `content`.
        source: what interpreters load: the path (memory-mapped by the
            interpreter; `check_unchanged` confirms it is still the verified
            file) or `content`.
        metadata: the tflstm metadata, embedded or derived from the fused ops.
        file_id: (device, inode, size, mtime) of the path when it was read; None for bytes.
    """

    content: bytes
    view: ModelView
    source: str | bytes
    metadata: ModelMetadata
    file_id: tuple[int, int, int, int] | None

    def check_unchanged(self) -> None:
        """ModelError if the model file was replaced or modified since it was verified."""
        if self.file_id is not None and _file_id(str(self.source)) != self.file_id:
            raise ModelError(
                f"{self.source} changed after it was verified: replace model files atomically (write a new "
                "file, then rename it over the old one) and load them again."
            )


def _file_id(path: str) -> tuple[int, int, int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def read_metadata(content: bytes) -> ModelMetadata:
    """The tflstm metadata embedded in `.tflite` bytes, checked against the model.

    Raises:
        ModelError: the bytes are not a readable model, carry no readable
            metadata, or metadata that does not fit them.
    """
    return _read(bytes(content), derive=False)[1]


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


def _read(content: bytes, *, derive: bool = True) -> tuple[ModelView, ModelMetadata]:
    """The verified view of `content` and its metadata (derived when absent and `derive`)."""
    try:
        view = ModelView(content)
        if view.metadata(METADATA_NAME) is None and derive:
            written = sorted({STEP_SIGNATURE, SEQUENCE_SIGNATURE} & set(view.signatures))
            if written:
                raise MetadataError(
                    f"The model has a {written[0]!r} signature, as tflstm writes, but no tflstm metadata: the "
                    "file is damaged or was edited."
                )
            refuse_unfused_loops(view)
            metadata = derive_metadata(view)
        else:
            metadata = read_format_metadata(view)
            check_checksum(view, metadata)
        check_metadata(metadata, view)
    except (FlatbufferError, MetadataError) as err:
        raise ModelError(str(err)) from err
    return view, metadata


def load_model(model: str | Path | bytes | bytearray | memoryview) -> LoadedModel:
    """Reads and verifies a model from a path or bytes, with its metadata.

    Bytes are copied first, so no interpreter ever reads (or writes) the caller's
    buffer. A stock fused-LSTM model without tflstm metadata gets metadata derived
    from its fused ops.

    Raises:
        ModelError: not a readable model, or not one the runtime can stream; also
            a file that cannot be read (chained to the OS error).
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        content = bytes(memoryview(model).cast("B"))  # always a new object: the runtime's own copy
        view, metadata = _read(content)
        return LoadedModel(content, view, content, metadata, None)
    path = str(model)
    try:
        before = _file_id(path)
        content = Path(path).read_bytes()
    except OSError as err:
        raise ModelError(f"Cannot read the model file {path}: {err.strerror or err}.") from err
    view, metadata = _read(content)
    loaded = LoadedModel(content, view, path, metadata, before)
    loaded.check_unchanged()
    return loaded
