"""Does a model file say what it is? Its checksum, its weights and its metadata, checked.

tflstm writes into every model's metadata a sha256 of the whole file (taken with
that very value written as 64 zeros: `seal`) and the weights fingerprint. A
runtime loading the model checks both (`check_checksum`, `check_metadata`), and
that every tensor the metadata names is the tensor it claims to be, so neither a
damaged file nor lying metadata can make it write outside the model's own
input, output and state buffers.
"""

from __future__ import annotations

import hashlib

from tflstm.flatbuf import ModelView
from tflstm.format import (
    METADATA_NAME, SEQUENCE_SIGNATURE, STEP_SIGNATURE, MetadataError, ModelMetadata, TensorSpec, fused_state_tensors,
    weights_fingerprint,
)

CHECKSUM_PLACEHOLDER = "0" * 64
_CHECKSUM_FIELD = b'"checksum": "'


def _checksum_position(view: ModelView) -> int:
    """Byte offset, in the file, of the checksum's 64 hex digits inside the tflstm metadata."""
    span = view.metadata_span(METADATA_NAME)
    if span is None:
        raise MetadataError("The model has no tflstm metadata to hold a checksum.")
    text = view.content[span[0] : span[1]]
    found = text.find(_CHECKSUM_FIELD)
    if found < 0 or text.find(_CHECKSUM_FIELD, found + 1) >= 0:
        raise MetadataError("The tflstm metadata must hold exactly one `checksum` field.")
    return span[0] + found + len(_CHECKSUM_FIELD)


def file_checksum(content: bytes, position: int) -> str:
    """sha256 (hex) of `content` with the 64 bytes at `position` taken as ASCII zeros."""
    digest = hashlib.sha256()
    data = memoryview(content)
    digest.update(data[:position])
    digest.update(CHECKSUM_PLACEHOLDER.encode())
    digest.update(data[position + len(CHECKSUM_PLACEHOLDER) :])
    return digest.hexdigest()


def seal(content: bytes) -> bytes:
    """Writes the file checksum into a model whose metadata holds `CHECKSUM_PLACEHOLDER`."""
    position = _checksum_position(ModelView(content))
    if content[position : position + 64] != CHECKSUM_PLACEHOLDER.encode():
        raise MetadataError("The model's checksum field does not hold the placeholder to seal.")
    return content[:position] + file_checksum(content, position).encode() + content[position + 64 :]


def check_checksum(view: ModelView, metadata: ModelMetadata) -> None:
    """MetadataError unless the file's checksum is the one its metadata holds."""
    if metadata.checksum is None:
        raise MetadataError("The tflstm metadata holds no checksum: convert the model again with this tflstm.")
    position = _checksum_position(view)
    if view.content[position : position + 64] != metadata.checksum.encode():
        raise MetadataError("The model's checksum field does not match its parsed metadata.")
    actual = file_checksum(view.content, position)
    if actual != metadata.checksum:
        raise MetadataError(
            f"The model file is damaged: its sha256 is {actual[:12]}..., its metadata says "
            f"{metadata.checksum[:12]}...; get a fresh copy of the model."
        )


def _check_tensor(view: ModelView, spec: TensorSpec, role: str, allowed: tuple[int, ...]) -> None:
    index = spec.tensor_index
    if not 0 <= index < view.num_tensors:
        raise MetadataError(
            f"The metadata's {role} {spec.name!r} names tensor {index}; the model has {view.num_tensors} tensors."
        )
    if index not in allowed:
        raise MetadataError(f"The metadata's {role} {spec.name!r} names tensor {index}, which is not a model {role}.")
    if view.tensor_data(index):
        raise MetadataError(f"The metadata's {role} {spec.name!r} names tensor {index}, which holds constant data.")
    actual = view.tensor_spec(index, spec.name)
    described = TensorSpec(spec.name, spec.shape, spec.dtype, spec.scale, spec.zero_point, spec.tensor_index)
    if actual != described:
        raise MetadataError(
            f"The metadata's {role} {spec.name!r} says {described}, but the model's tensor {index} is {actual}."
        )


def check_metadata(metadata: ModelMetadata, view: ModelView) -> None:
    """MetadataError unless `metadata` describes the model of `view`.

    Checks: the inputs and outputs are subgraph inputs and outputs with the stated
    shape, dtype and quantization; the states are exactly the h and c variable
    inputs of the fused LSTM ops (kind by slot), each named once; the input's
    shape agrees with the batch size and time steps; the `step` or `sequence`
    signature, when present, maps the same names to the same tensors; the
    weights fingerprint is the model's.
    """
    for spec in metadata.inputs:
        _check_tensor(view, spec, "input", view.inputs)
    for spec in metadata.outputs:
        _check_tensor(view, spec, "output", view.outputs)
    expected = {index: kind for _, kind, index in fused_state_tensors(view)}
    described = {spec.tensor_index: spec for spec in metadata.states}
    if len(described) != len(metadata.states) or set(described) != set(expected):
        raise MetadataError(
            f"The metadata's states name tensors {sorted(s.tensor_index for s in metadata.states)}; the model's "
            f"fused LSTM ops keep their state in tensors {sorted(expected)}."
        )
    for index, spec in described.items():
        if spec.kind != expected[index]:
            raise MetadataError(f"The metadata calls {spec.name!r} a {spec.kind!r} state; tensor {index} is the "
                                f"{expected[index]!r} state of its fused op.")
        _check_tensor(view, spec, "state", tuple(range(view.num_tensors)))
        if spec.shape[:1] != (metadata.batch_size,):
            raise MetadataError(f"State {spec.name!r} has shape {list(spec.shape)}; the batch size is "
                                f"{metadata.batch_size}.")
    shape = metadata.inputs[0].shape
    if len(shape) != 3 or shape[:2] != (metadata.time_steps, metadata.batch_size):
        raise MetadataError(
            f"The input {metadata.inputs[0].name!r} has shape {list(shape)}; the metadata's time steps and batch "
            f"size make it [{metadata.time_steps}, {metadata.batch_size}, depth]."
        )
    key = STEP_SIGNATURE if metadata.kind == "step" else SEQUENCE_SIGNATURE
    signature = view.signatures.get(key)
    if signature is not None:
        mapped = {**signature["inputs"], **signature["outputs"]}
        for spec in (*metadata.inputs, *metadata.outputs, *(metadata.states if metadata.kind == "step" else ())):
            if mapped.get(spec.name) != spec.tensor_index:
                raise MetadataError(f"The {key!r} signature maps {spec.name!r} to tensor {mapped.get(spec.name)}; "
                                    f"the metadata says {spec.tensor_index}.")
    fingerprint = weights_fingerprint(view)
    if fingerprint != metadata.fingerprint:
        raise MetadataError(
            f"The model's weights are not the ones its metadata describes (fingerprint {fingerprint[:12]}..., "
            f"metadata {metadata.fingerprint[:12]}...): the file is damaged or was edited."
        )
