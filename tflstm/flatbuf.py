"""`.tflite` flatbuffers: one module for reading them (runtime) and editing them (converter).

Two ways in, one policy (opcodes, tensor types, quantization):

* `ModelView` reads `.tflite` bytes with no schema module (tflite-runtime ships
  none), bounds-checking every offset, vector and string it follows, so damaged
  or hostile bytes raise `FlatbufferError` instead of crashing. Its tensors are
  `tflstm.format.TensorSpec` records.
* `read_model` / `write_model` and the verbs after them edit the mutable object
  API (`ModelT`) of the schema module ai-edge-litert ships; the converter uses
  them. In-place mutators return None.

Before any native code sees a file, `verify` walks every table reachable from
its root with the schema's field layout (`tflite_layout.json`, see
`tools/tflite_layout.py`) and checks the indices that tie the tables together,
so that an interpreter built on it reads only memory inside the file.

Field slots below are the declaration order of the fields in TFLite's
`schema.fbs` (a union takes two slots: its type, then its value).
"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Sequence
from functools import cache
from importlib import resources
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from tflstm.format import TensorSpec

FILE_IDENTIFIER = b"TFL3"

TENSOR_DTYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool",
    7: "int16", 9: "int8", 10: "float64",
}
"""TensorType codes tflstm reads -> numpy dtype names."""

MAX_DEPTH = 64
"""Deepest nesting of tables `verify` follows (flatbuffers' own verifier default)."""
MAX_TABLES = 1_000_000
"""Most tables `verify` visits, so that shared or looping offsets cannot make it run forever."""

# Field slots of the tables read here.
_MODEL = {"version": 0, "operator_codes": 1, "subgraphs": 2, "buffers": 4, "metadata": 6, "signature_defs": 7}
_OPERATOR_CODE = {"deprecated_builtin_code": 0, "version": 2, "builtin_code": 3}
_SUBGRAPH = {"tensors": 0, "inputs": 1, "outputs": 2, "operators": 3}
_TENSOR = {"shape": 0, "type": 1, "buffer": 2, "name": 3, "quantization": 4, "is_variable": 5}
_QUANTIZATION = {"scale": 2, "zero_point": 3}
_OPERATOR = {"opcode_index": 0, "inputs": 1, "outputs": 2}
_OPERATOR_INTERMEDIATES = 8
_TENSOR_SPARSITY = 6
_BUFFER = {"data": 0, "offset": 1, "size": 2}
_METADATA = {"name": 0, "buffer": 1}
_SIGNATURE_DEF = {"inputs": 0, "outputs": 1, "signature_key": 2, "subgraph_index": 4}
_TENSOR_MAP = {"name": 0, "tensor_index": 1}


class FlatbufferError(ValueError):
    """The bytes are not a readable `.tflite` flatbuffer, or break a rule of this module."""


def check_identifier(content: bytes) -> None:
    """Raises FlatbufferError unless `content` carries the .tflite file identifier."""
    if len(content) < 8 or content[4:8] != FILE_IDENTIFIER:
        raise FlatbufferError(
            f"Expected a .tflite flatbuffer (file identifier {FILE_IDENTIFIER!r} at byte 4), "
            f"got {len(content)} bytes starting with {bytes(content[:8])!r}."
        )


def dtype_name(type_code: int, tensor: str) -> str:
    """numpy dtype name of a TensorType code; FlatbufferError for types tflstm does not read."""
    if type_code not in TENSOR_DTYPES:
        raise FlatbufferError(f"Tensor {tensor!r} has tensor type {type_code}, which tflstm does not read.")
    return TENSOR_DTYPES[type_code]


def quantization(scales: Sequence[float], zero_points: Sequence[int], tensor: str) -> tuple[float, int] | None:
    """Per-tensor (scale, zero_point) from a tensor's quantization vectors; None for none.

    Raises:
        FlatbufferError: per-channel quantization (several scales), or vectors
            that do not pair up.
    """
    if len(scales) == 0:
        return None
    if len(scales) != 1 or len(zero_points) != 1:
        raise FlatbufferError(
            f"Tensor {tensor!r} is quantized with {len(scales)} scale(s) and {len(zero_points)} zero "
            "point(s); expected one of each (per-tensor quantization)."
        )
    return float(scales[0]), int(zero_points[0])


# ---- the schema-free, bounds-checked reader -----------------------------------------------


class _Table(NamedTuple):
    position: int  # where the table starts
    vtable: int  # where its vtable starts
    vtable_size: int
    size: int  # inline size of the table


class _Reader:
    """Bounds-checked reads of flatbuffer primitives over one buffer."""

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.size = len(content)

    def _check(self, position: int, length: int, what: str) -> None:
        if position < 0 or length < 0 or position + length > self.size:
            raise FlatbufferError(
                f"The .tflite flatbuffer is damaged: {what} at byte {position} (+{length}) lies outside "
                f"its {self.size} bytes."
            )

    def scalar(self, fmt: str, position: int, what: str) -> Any:
        self._check(position, struct.calcsize(fmt), what)
        return struct.unpack_from("<" + fmt, self.content, position)[0]

    def table(self, position: int, what: str) -> _Table:
        vtable = position - self.scalar("i", position, what)
        vtable_size = self.scalar("H", vtable, f"the vtable of {what}")
        size = self.scalar("H", vtable + 2, f"the vtable of {what}")
        if vtable_size < 4 or vtable_size % 2 or size < 4:
            raise FlatbufferError(f"The .tflite flatbuffer is damaged: {what} has a malformed vtable.")
        self._check(vtable, vtable_size, f"the vtable of {what}")
        self._check(position, size, what)
        return _Table(position, vtable, vtable_size, size)

    def field(self, table: _Table, slot: int, width: int, what: str) -> int:
        """Absolute position of a field, or 0 when absent."""
        entry = 4 + 2 * slot
        if entry >= table.vtable_size:
            return 0
        offset = self.scalar("H", table.vtable + entry, what)
        if not offset:
            return 0
        if offset + width > table.size:
            raise FlatbufferError(f"The .tflite flatbuffer is damaged: {what} lies outside its table.")
        return table.position + offset

    def field_scalar(self, table: _Table, slot: int, fmt: str, default: Any, what: str) -> Any:
        position = self.field(table, slot, struct.calcsize(fmt), what)
        return self.scalar(fmt, position, what) if position else default

    def _target(self, table: _Table, slot: int, what: str) -> int:
        position = self.field(table, slot, 4, what)
        if not position:
            return 0
        target = position + self.scalar("I", position, what)
        self._check(target, 4, what)
        return target

    def vector(self, table: _Table, slot: int, element_size: int, what: str) -> tuple[int, int]:
        """(start, count) of a vector field; (0, 0) when absent."""
        target = self._target(table, slot, what)
        if not target:
            return 0, 0
        count = self.scalar("I", target, what)
        self._check(target + 4, count * element_size, what)
        return target + 4, count

    def numbers(self, table: _Table, slot: int, dtype: str, what: str) -> np.ndarray:
        """A vector of scalars as a read-only little-endian numpy array."""
        kind = np.dtype(dtype).newbyteorder("<")
        start, count = self.vector(table, slot, kind.itemsize, what)
        return np.frombuffer(self.content, dtype=kind, count=count, offset=start) if count else np.zeros(0, kind)

    def string(self, table: _Table, slot: int, what: str) -> str:
        start, count = self.vector(table, slot, 1, what)
        if not start:
            return ""
        self._check(start + count, 1, what)
        if self.content[start + count] != 0:
            raise FlatbufferError(f"The .tflite flatbuffer is damaged: {what} lacks its terminating zero.")
        try:
            return self.content[start : start + count].decode()
        except UnicodeDecodeError as err:
            raise FlatbufferError(f"The .tflite flatbuffer is damaged: {what} is not UTF-8 ({err}).") from None

    def child(self, table: _Table, slot: int, what: str) -> _Table | None:
        target = self._target(table, slot, what)
        return self.table(target, what) if target else None

    def tables(self, table: _Table, slot: int, what: str) -> list[_Table]:
        start, count = self.vector(table, slot, 4, what)
        return [
            self.table(start + 4 * k + self.scalar("I", start + 4 * k, what), f"{what}[{k}]")
            for k in range(count)
        ]


@cache
def _layout() -> dict[str, Any]:
    return json.loads(resources.files("tflstm").joinpath("tflite_layout.json").read_text())


def verify(content: bytes) -> None:
    """Checks that a `.tflite` flatbuffer can be read without leaving its bytes.

    Walks every table reachable from the root (every field of the TFLite schema,
    every vector, string and union), then checks what ties them together in every
    subgraph: operator codes, tensor and buffer indices in range, constant data
    of exactly the size its tensor's type and shape need, external buffer data
    inside the file.

    Raises:
        FlatbufferError: what is out of bounds or inconsistent, and where.
    """
    check_identifier(content)
    reader, layout = _Reader(content), _layout()
    tables, unions = layout["tables"], layout["unions"]
    root = reader.table(reader.scalar("I", 0, "the root offset"), "the model table")
    pending: list[tuple[_Table, str, int, str]] = [(root, layout["root"], 1, "the model")]
    visited = 0
    while pending:
        table, name, depth, where = pending.pop()
        visited += 1
        if depth > MAX_DEPTH or visited > MAX_TABLES:
            raise FlatbufferError(f"The .tflite flatbuffer is damaged: tables nest deeper than {MAX_DEPTH} or "
                                  f"number more than {MAX_TABLES} (at {where}).")
        for slot_text, kind in tables[name].items():
            slot, what = int(slot_text), f"field {slot_text} of {name} ({where})"
            if kind == "str":
                reader.string(table, slot, what)
            elif kind[0] == "s":
                reader.field(table, slot, int(kind[1:]), what)
            elif kind == "vstr":
                start, count = reader.vector(table, slot, 4, what)
                for k in range(count):
                    position = start + 4 * k
                    target = position + reader.scalar("I", position, what)
                    length = reader.scalar("I", target, what)
                    reader._check(target + 4, length + 1, what)  # noqa: SLF001 - same module
            elif kind[0] == "v" and kind[1:].isdigit():
                reader.vector(table, slot, int(kind[1:]), what)
            elif kind.startswith("vt:"):
                for k, child in enumerate(reader.tables(table, slot, what)):
                    pending.append((child, kind[3:], depth + 1, f"{kind[3:]} {k} of {where}"))
            elif kind.startswith("t:"):
                child = reader.child(table, slot, what)
                if child is not None:
                    pending.append((child, kind[2:], depth + 1, f"{kind[2:]} of {where}"))
            else:  # "u:<union>": the type is the byte in the slot before
                code = reader.field_scalar(table, slot - 1, "B", 0, what)
                child = reader.child(table, slot, what)
                if child is None or code == 0:
                    continue
                member = unions[kind[2:]].get(str(code))
                if member is None:
                    raise FlatbufferError(f"The .tflite flatbuffer is damaged: {what} has unknown type {code}.")
                pending.append((child, member, depth + 1, f"{member} of {where}"))
    _check_references(reader, root)


def _check_references(reader: _Reader, root: _Table) -> None:
    """Indices between tables in range, constant data sized by its tensor, in every subgraph."""
    codes = len(reader.tables(root, _MODEL["operator_codes"], "operator_codes"))
    buffers = reader.tables(root, _MODEL["buffers"], "buffers")
    for k, buffer in enumerate(buffers):
        offset = int(reader.field_scalar(buffer, _BUFFER["offset"], "Q", 0, f"buffer {k}"))
        size = int(reader.field_scalar(buffer, _BUFFER["size"], "Q", 0, f"buffer {k}"))
        if offset > 1:
            reader._check(offset, size, f"the data of buffer {k}")  # noqa: SLF001 - same module
    for g, subgraph in enumerate(reader.tables(root, _MODEL["subgraphs"], "subgraphs")):
        where = f"subgraph {g}"
        tensors = reader.tables(subgraph, _SUBGRAPH["tensors"], "tensors")
        count = len(tensors)

        def indices(table: _Table, slot: int, what: str, low: int) -> None:
            bad = [int(i) for i in reader.numbers(table, slot, "int32", what) if not low <= int(i) < count]
            if bad:
                raise FlatbufferError(
                    f"The .tflite flatbuffer is damaged: {what} name tensor(s) {bad}; {where} has {count} tensors."
                )

        indices(subgraph, _SUBGRAPH["inputs"], f"the inputs of {where}", 0)
        indices(subgraph, _SUBGRAPH["outputs"], f"the outputs of {where}", 0)
        for k, op in enumerate(reader.tables(subgraph, _SUBGRAPH["operators"], "operators")):
            code = int(reader.field_scalar(op, _OPERATOR["opcode_index"], "I", 0, "an operator"))
            if code >= codes:
                raise FlatbufferError(
                    f"The .tflite flatbuffer is damaged: operator {k} of {where} names operator code {code}; "
                    f"the model has {codes}."
                )
            indices(op, _OPERATOR["inputs"], f"the inputs of operator {k} of {where}", -1)
            indices(op, _OPERATOR["outputs"], f"the outputs of operator {k} of {where}", 0)
            indices(op, _OPERATOR_INTERMEDIATES, f"the intermediates of operator {k} of {where}", 0)
        for k, tensor in enumerate(tensors):
            _check_tensor(reader, tensor, buffers, f"tensor {k} of {where}")


def _check_tensor(reader: _Reader, tensor: _Table, buffers: list[_Table], what: str) -> None:
    shape = [int(d) for d in reader.numbers(tensor, _TENSOR["shape"], "int32", what)]
    if any(d < 0 for d in shape):
        raise FlatbufferError(f"The .tflite flatbuffer is damaged: {what} has shape {shape}.")
    index = int(reader.field_scalar(tensor, _TENSOR["buffer"], "I", 0, what))
    if index >= max(len(buffers), 1):
        raise FlatbufferError(
            f"The .tflite flatbuffer is damaged: {what} names buffer {index}; the model has {len(buffers)}."
        )
    if index == 0:
        return
    start, size = reader.vector(buffers[index], _BUFFER["data"], 1, f"buffer {index}")
    if not size:
        size = int(reader.field_scalar(buffers[index], _BUFFER["size"], "Q", 0, f"buffer {index}"))
    if not size:
        return
    type_code = int(reader.field_scalar(tensor, _TENSOR["type"], "b", 0, what))
    if reader.child(tensor, _TENSOR_SPARSITY, what) is not None:
        raise FlatbufferError(f"{what} is a sparse constant tensor, which tflstm does not read.")
    itemsize = np.dtype(dtype_name(type_code, what)).itemsize
    needed = itemsize * int(np.prod(shape, dtype=np.int64))
    if size != needed:
        raise FlatbufferError(
            f"The .tflite flatbuffer is damaged: {what} holds {size} bytes of data; its type and shape "
            f"{shape} need {needed}."
        )


class OperatorInfo(NamedTuple):
    """One operator of subgraph 0.

    Attributes:
        builtin_code: BuiltinOperator code (e.g. 44 for UNIDIRECTIONAL_SEQUENCE_LSTM).
        version: the op version.
        inputs, outputs: tensor indices (-1: an absent optional input).
    """

    builtin_code: int
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]
    type_code: int
    buffer: int
    is_variable: bool
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]


class ModelView:
    """Subgraph 0 of `.tflite` bytes, read without a schema module after `verify`.

    Args:
        content: the `.tflite` bytes (kept, not copied).

    Raises:
        FlatbufferError: the bytes are not a readable `.tflite` model, with what
            is wrong.
    """

    def __init__(self, content: bytes) -> None:
        verify(content)
        self.content = content
        reader = self._reader = _Reader(content)
        root = reader.table(reader.scalar("I", 0, "the root offset"), "the model table")
        self.version = int(reader.field_scalar(root, _MODEL["version"], "I", 0, "the model version"))
        self.builtin_codes: tuple[int, ...] = ()
        self.op_versions: tuple[int, ...] = ()
        codes = reader.tables(root, _MODEL["operator_codes"], "operator_codes")
        self.builtin_codes = tuple(
            max(
                int(reader.field_scalar(code, _OPERATOR_CODE["deprecated_builtin_code"], "b", 0, "an operator code")),
                int(reader.field_scalar(code, _OPERATOR_CODE["builtin_code"], "i", 0, "an operator code")),
            )
            for code in codes
        )
        self.op_versions = tuple(
            int(reader.field_scalar(code, _OPERATOR_CODE["version"], "i", 1, "an operator code")) for code in codes
        )
        subgraphs = reader.tables(root, _MODEL["subgraphs"], "subgraphs")
        if not subgraphs:
            raise FlatbufferError("The .tflite model has no subgraph.")
        self.num_subgraphs = len(subgraphs)
        self._buffers = reader.tables(root, _MODEL["buffers"], "buffers")
        self._tensors = tuple(self._read_tensors(subgraphs[0]))
        count = len(self._tensors)
        self.inputs = self._indices(subgraphs[0], _SUBGRAPH["inputs"], "subgraph inputs")
        self.outputs = self._indices(subgraphs[0], _SUBGRAPH["outputs"], "subgraph outputs")
        self.operators = tuple(self._read_operators(subgraphs[0]))
        self._metadata = {
            reader.string(entry, _METADATA["name"], "a metadata name"):
                int(reader.field_scalar(entry, _METADATA["buffer"], "I", 0, "a metadata buffer index"))
            for entry in reader.tables(root, _MODEL["metadata"], "metadata")
        }
        self.signatures = self._read_signatures(root, count)

    # ---- reading ------------------------------------------------------------------------
    def _read_tensors(self, subgraph: _Table) -> list[_Tensor]:
        reader, tensors = self._reader, []
        for k, table in enumerate(reader.tables(subgraph, _SUBGRAPH["tensors"], "tensors")):
            what = f"tensor {k}"
            scales: tuple[float, ...] = ()
            zero_points: tuple[int, ...] = ()
            quant = reader.child(table, _TENSOR["quantization"], f"the quantization of {what}")
            if quant is not None:
                scales = tuple(float(v) for v in reader.numbers(quant, _QUANTIZATION["scale"], "float32", what))
                zero_points = tuple(int(v) for v in reader.numbers(quant, _QUANTIZATION["zero_point"], "int64", what))
            tensors.append(_Tensor(  # shapes and buffer indices were checked by `verify`
                name=reader.string(table, _TENSOR["name"], f"the name of {what}"),
                shape=tuple(int(d) for d in reader.numbers(table, _TENSOR["shape"], "int32", f"the shape of {what}")),
                type_code=int(reader.field_scalar(table, _TENSOR["type"], "b", 0, what)),
                buffer=int(reader.field_scalar(table, _TENSOR["buffer"], "I", 0, what)),
                is_variable=bool(reader.field_scalar(table, _TENSOR["is_variable"], "B", 0, what)),
                scales=scales,
                zero_points=zero_points,
            ))
        return tensors

    def _indices(self, table: _Table, slot: int, what: str) -> tuple[int, ...]:
        """Tensor indices (in range: `verify` checked them)."""
        return tuple(int(i) for i in self._reader.numbers(table, slot, "int32", what))

    def _read_operators(self, subgraph: _Table) -> list[OperatorInfo]:
        reader, operators = self._reader, []
        for k, table in enumerate(reader.tables(subgraph, _SUBGRAPH["operators"], "operators")):
            what = f"operator {k}"
            code = int(reader.field_scalar(table, _OPERATOR["opcode_index"], "I", 0, what))  # in range: `verify`
            operators.append(OperatorInfo(
                builtin_code=self.builtin_codes[code],
                version=self.op_versions[code],
                inputs=self._indices(table, _OPERATOR["inputs"], f"the inputs of {what}"),
                outputs=self._indices(table, _OPERATOR["outputs"], f"the outputs of {what}"),
            ))
        return operators

    def _read_signatures(self, root: _Table, count: int) -> dict[str, dict[str, dict[str, int]]]:
        reader, signatures = self._reader, {}
        for signature in reader.tables(root, _MODEL["signature_defs"], "signature_defs"):
            key = reader.string(signature, _SIGNATURE_DEF["signature_key"], "a signature key")
            maps = {}
            for side in ("inputs", "outputs"):
                entries = {}
                for entry in reader.tables(signature, _SIGNATURE_DEF[side], f"the {side} of signature {key!r}"):
                    name = reader.string(entry, _TENSOR_MAP["name"], f"a tensor name of signature {key!r}")
                    index = int(reader.field_scalar(entry, _TENSOR_MAP["tensor_index"], "I", 0, name))
                    if index >= count:
                        raise FlatbufferError(
                            f"The .tflite flatbuffer is damaged: signature {key!r} maps {name!r} to tensor "
                            f"{index}; subgraph 0 has {count} tensors."
                        )
                    entries[name] = index
                maps[side] = entries
            signatures[key] = maps
        return signatures

    # ---- public reads ---------------------------------------------------------------------
    @property
    def num_tensors(self) -> int:
        """Number of tensors of subgraph 0."""
        return len(self._tensors)

    def _tensor(self, index: int) -> _Tensor:
        if not 0 <= index < len(self._tensors):
            raise FlatbufferError(f"Tensor index {index} is out of range: subgraph 0 has {len(self._tensors)} tensors.")
        return self._tensors[index]

    def tensor_spec(self, index: int, name: str | None = None) -> TensorSpec:
        """Tensor `index` of subgraph 0 as a `TensorSpec` named `name` (default: its own name)."""
        tensor = self._tensor(index)
        quant = quantization(tensor.scales, tensor.zero_points, tensor.name)
        return TensorSpec(
            name=tensor.name if name is None else name,
            shape=tensor.shape,
            dtype=dtype_name(tensor.type_code, tensor.name),
            scale=None if quant is None else quant[0],
            zero_point=None if quant is None else quant[1],
            tensor_index=index,
        )

    def is_variable(self, index: int) -> bool:
        """True for a variable tensor (the fused LSTM op's state)."""
        return self._tensor(index).is_variable

    def tensor_data(self, index: int) -> bytes:
        """The constant data of tensor `index` (b"" for a tensor without data)."""
        return self.buffer_data(self._tensor(index).buffer)

    def buffer_data(self, index: int) -> bytes:
        """The bytes of buffer `index` (b"" when empty); data stored after the flatbuffer is read too."""
        if index <= 0 or index >= len(self._buffers):
            return b""
        start, end = self._buffer_span(index, f"the data of buffer {index}")
        return self.content[start:end]

    def _buffer_span(self, index: int, what: str) -> tuple[int, int]:
        """(start, end) of buffer `index`'s data in the file: inline, or stored after the flatbuffer."""
        reader, buffer = self._reader, self._buffers[index]
        start, count = reader.vector(buffer, _BUFFER["data"], 1, what)
        if count:
            return start, start + count
        offset = int(reader.field_scalar(buffer, _BUFFER["offset"], "Q", 0, f"buffer {index}"))
        size = int(reader.field_scalar(buffer, _BUFFER["size"], "Q", 0, f"buffer {index}"))
        if offset > 1 and size:
            reader._check(offset, size, what)  # noqa: SLF001 - same module
            return offset, offset + size
        return start, start

    def metadata(self, name: str) -> bytes | None:
        """The bytes of the metadata entry `name`, or None."""
        span = self.metadata_span(name)
        return None if span is None else self.content[span[0] : span[1]]

    def metadata_span(self, name: str) -> tuple[int, int] | None:
        """Where the data of metadata entry `name` lies in the file: (start, end) byte offsets, or None."""
        index = self._metadata.get(name)
        if index is None:
            return None
        if not 0 < index < len(self._buffers):
            raise FlatbufferError(
                f"The .tflite flatbuffer is damaged: metadata {name!r} names buffer {index}; the model has "
                f"{len(self._buffers)}."
            )
        return self._buffer_span(index, f"metadata {name!r}")

    def op_names(self) -> list[str]:
        """Builtin names of the operators of subgraph 0 (`BUILTIN_<code>` for unknown codes)."""
        return [builtin_name(op.builtin_code) for op in self.operators]


# ---- builtin operator names (no schema module needed) ---------------------------------------

_BUILTIN_NAMES = {
    0: "ADD", 2: "CONCATENATION", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED", 14: "LOGISTIC", 18: "MUL",
    19: "RELU", 22: "RESHAPE", 25: "SOFTMAX", 28: "TANH", 44: "UNIDIRECTIONAL_SEQUENCE_LSTM",
    45: "STRIDED_SLICE", 55: "MAXIMUM", 98: "LEAKY_RELU", 111: "ELU", 114: "QUANTIZE", 119: "WHILE",
    129: "CALL_ONCE", 142: "VAR_HANDLE", 143: "READ_VARIABLE", 144: "ASSIGN_VARIABLE", 150: "GELU",
}
"""BuiltinOperator names for messages where no schema module is installed (the runtime)."""


def builtin_name(code: int) -> str:
    """Name of a BuiltinOperator code: from the schema module when installed, else a short table."""
    try:
        return _schema_builtin_names().get(code, f"BUILTIN_{code}")
    except ImportError:
        return _BUILTIN_NAMES.get(code, f"BUILTIN_{code}")


@cache
def _schema_builtin_names() -> dict[int, str]:
    return _enum_names(schema().BuiltinOperator)


# ---- the object API (converter side) ----------------------------------------------------------


def schema() -> ModuleType:
    """The generated TFLite schema module (object API)."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "Rewriting .tflite files needs ai-edge-litert's schema module: pip install ai-edge-litert"
        ) from err
    return schema_py_generated


def read_model(content: bytes) -> Any:
    """Parses `.tflite` bytes into a mutable `ModelT` (after a bounds-checked read)."""
    data = bytes(content)
    ModelView(data)
    return schema().ModelT.InitFromPackedBuf(data, 0)


def write_model(model: Any) -> bytes:
    """Serializes a `ModelT` back into `.tflite` bytes."""
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def _enum_names(enum_class: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def op_code_name(op_code: Any) -> str:
    """Builtin operator name of an `OperatorCodeT`, e.g. "FULLY_CONNECTED"."""
    return builtin_name(max(op_code.builtinCode, op_code.deprecatedBuiltinCode))


def op_names(model: Any, subgraph: int = 0) -> list[str]:
    """Builtin names of the operators of one subgraph, in execution order."""
    codes = model.operatorCodes
    return [op_code_name(codes[op.opcodeIndex]) for op in model.subgraphs[subgraph].operators or []]


def ops_named(model: Any, name: str, subgraph: int = 0) -> list[Any]:
    """The operators (`OperatorT`) of one subgraph whose builtin name is `name`."""
    codes = model.operatorCodes
    return [
        op for op in model.subgraphs[subgraph].operators or []
        if op_code_name(codes[op.opcodeIndex]) == name
    ]


def tensor_name(tensor: Any) -> str:
    """The name of a `TensorT` as str."""
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else (name or "")


def tensor_spec(model: Any, index: int, name: str | None = None) -> TensorSpec:
    """Tensor `index` of subgraph 0 of a `ModelT` as a `TensorSpec` (same policy as `ModelView`)."""
    tensor = model.subgraphs[0].tensors[index]
    label = tensor_name(tensor)
    q = tensor.quantization
    scales = [] if q is None or q.scale is None else list(q.scale)
    zero_points = [] if q is None or q.zeroPoint is None else list(q.zeroPoint)
    quant = quantization(scales, zero_points, label)
    return TensorSpec(
        name=label if name is None else name,
        shape=tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ())),
        dtype=dtype_name(tensor.type, label),
        scale=None if quant is None else quant[0],
        zero_point=None if quant is None else quant[1],
        tensor_index=index,
    )


def set_metadata(model: Any, name: str, data: bytes) -> None:
    """Adds or replaces the metadata entry `name` of a `ModelT` with `data`."""
    s = schema()
    buffer = s.BufferT()
    buffer.data = np.frombuffer(data, dtype=np.uint8).copy()
    for entry in model.metadata or []:
        entry_name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if entry_name == name:
            model.buffers[entry.buffer] = buffer
            return
    model.buffers.append(buffer)
    entry = s.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]


def add_signature(
    model: Any, key: str, inputs: Sequence[tuple[str, int]], outputs: Sequence[tuple[str, int]]
) -> None:
    """Adds (or replaces) the SignatureDef `key` of subgraph 0 over (name, tensor index) pairs."""
    s = schema()

    def tensor_maps(pairs: Sequence[tuple[str, int]]) -> list[Any]:
        maps = []
        for name, index in pairs:
            entry = s.TensorMapT()
            entry.name = name
            entry.tensorIndex = index
            maps.append(entry)
        return maps

    signature = s.SignatureDefT()
    signature.signatureKey = key
    signature.subgraphIndex = 0
    signature.inputs = tensor_maps(inputs)
    signature.outputs = tensor_maps(outputs)
    model.signatureDefs = [s for s in model.signatureDefs or [] if s.signatureKey not in (key, key.encode())]
    model.signatureDefs.append(signature)
