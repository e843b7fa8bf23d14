"""A read-only view of a `.tflite` flatbuffer that needs no schema module.

The runtime must work where no TFLite schema module is installed (tflite-runtime
ships none), so this walks the few tables it needs by their field slots in the
TFLite schema (`schema.fbs`), with only the `flatbuffers` package.
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cached_property

import numpy as np
from flatbuffers import number_types as nt
from flatbuffers.table import Table

FILE_IDENTIFIER = b"TFL3"

# Field slots (declaration order in schema.fbs) of the tables read here.
_MODEL = {"operator_codes": 1, "subgraphs": 2, "buffers": 4, "metadata": 6}
_OPERATOR_CODE = {"deprecated_builtin_code": 0, "version": 2, "builtin_code": 3}
_SUBGRAPH = {"tensors": 0, "inputs": 1, "outputs": 2, "operators": 3}
_TENSOR = {"shape": 0, "type": 1, "buffer": 2, "name": 3, "quantization": 4, "is_variable": 5}
_QUANTIZATION = {"scale": 2, "zero_point": 3}
_OPERATOR = {"opcode_index": 0, "inputs": 1, "outputs": 2}
_METADATA = {"name": 0, "buffer": 1}
_BUFFER = {"data": 0}

# TensorType enum values -> numpy dtype names.
TENSOR_DTYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool",
    7: "int16", 9: "int8", 10: "float64",
}


def check_identifier(content: bytes) -> None:
    """Raises ValueError unless `content` carries the .tflite file identifier."""
    if len(content) < 8 or content[4:8] != FILE_IDENTIFIER:
        raise ValueError(
            f"Expected a .tflite flatbuffer (file identifier {FILE_IDENTIFIER!r} at byte 4), "
            f"got {len(content)} bytes starting with {content[:8]!r}."
        )


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One tensor of subgraph 0.

    Attributes:
        index: tensor index.
        name: tensor name.
        shape: static shape.
        dtype: numpy dtype name, or "type<N>" for types numpy lacks.
        is_variable: a variable (state) tensor.
        scale, zero_point: per-tensor quantization, or None.
        buffer: index of its data buffer (0: none).
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    is_variable: bool
    scale: float | None
    zero_point: int | None
    buffer: int


@dataclasses.dataclass(frozen=True)
class OperatorInfo:
    """One operator of subgraph 0: builtin code and tensor indices (-1: absent input)."""

    builtin_code: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def _field(table: Table, slot: int) -> int:
    return table.Offset(4 + 2 * slot)


def _scalar(table: Table, slot: int, flags: type, default: int | float) -> int | float:
    offset = _field(table, slot)
    return table.Get(flags, table.Pos + offset) if offset else default


def _vector_len(table: Table, slot: int) -> int:
    offset = _field(table, slot)
    return table.VectorLen(offset) if offset else 0


def _tables(table: Table, slot: int) -> list[Table]:
    offset = _field(table, slot)
    if not offset:
        return []
    start = table.Vector(offset)
    return [Table(table.Bytes, table.Indirect(start + 4 * k)) for k in range(table.VectorLen(offset))]


def _numbers(table: Table, slot: int, dtype: str) -> np.ndarray:
    offset = _field(table, slot)
    if not offset:
        return np.zeros(0, dtype=dtype)
    start = table.Vector(offset)
    count = table.VectorLen(offset)
    return np.frombuffer(table.Bytes, dtype=np.dtype(dtype).newbyteorder("<"), count=count, offset=start)


def _string(table: Table, slot: int) -> str:
    offset = _field(table, slot)
    return table.String(table.Pos + offset).decode() if offset else ""


class TFLiteModelView:
    """Reads operators, tensors, metadata and buffers of subgraph 0 of `.tflite` bytes."""

    def __init__(self, content: bytes) -> None:
        content = bytes(content)
        check_identifier(content)
        self.content = content
        self._root = Table(content, int.from_bytes(content[0:4], "little"))
        subgraphs = _tables(self._root, _MODEL["subgraphs"])
        if not subgraphs:
            raise ValueError("The .tflite model has no subgraph.")
        self.num_subgraphs = len(subgraphs)
        self._subgraph = subgraphs[0]

    @cached_property
    def _buffers(self) -> list[Table]:
        return _tables(self._root, _MODEL["buffers"])

    def buffer_data(self, index: int) -> bytes:
        """The bytes stored inline in buffer `index` (b"" when empty)."""
        if index <= 0 or index >= len(self._buffers):
            return b""
        data = _numbers(self._buffers[index], _BUFFER["data"], "uint8")
        return data.tobytes()

    @cached_property
    def tensors(self) -> tuple[TensorInfo, ...]:
        """Every tensor of subgraph 0, by index."""
        infos = []
        for index, table in enumerate(_tables(self._subgraph, _SUBGRAPH["tensors"])):
            scale = zero_point = None
            q_offset = _field(table, _TENSOR["quantization"])
            if q_offset:
                quant = Table(table.Bytes, table.Indirect(table.Pos + q_offset))
                scales = _numbers(quant, _QUANTIZATION["scale"], "float32")
                zero_points = _numbers(quant, _QUANTIZATION["zero_point"], "int64")
                if len(scales) == 1:
                    scale, zero_point = float(scales[0]), int(zero_points[0])
            type_code = int(_scalar(table, _TENSOR["type"], nt.Int8Flags, 0))
            infos.append(TensorInfo(
                index=index,
                name=_string(table, _TENSOR["name"]),
                shape=tuple(int(d) for d in _numbers(table, _TENSOR["shape"], "int32")),
                dtype=TENSOR_DTYPES.get(type_code, f"type{type_code}"),
                is_variable=bool(_scalar(table, _TENSOR["is_variable"], nt.BoolFlags, False)),
                scale=scale,
                zero_point=zero_point,
                buffer=int(_scalar(table, _TENSOR["buffer"], nt.Uint32Flags, 0)),
            ))
        return tuple(infos)

    @cached_property
    def inputs(self) -> tuple[int, ...]:
        """Tensor indices of the subgraph's inputs."""
        return tuple(int(i) for i in _numbers(self._subgraph, _SUBGRAPH["inputs"], "int32"))

    @cached_property
    def outputs(self) -> tuple[int, ...]:
        """Tensor indices of the subgraph's outputs."""
        return tuple(int(i) for i in _numbers(self._subgraph, _SUBGRAPH["outputs"], "int32"))

    @cached_property
    def operators(self) -> tuple[OperatorInfo, ...]:
        """Operators of subgraph 0 in execution order."""
        codes = []
        for code in _tables(self._root, _MODEL["operator_codes"]):
            deprecated = int(_scalar(code, _OPERATOR_CODE["deprecated_builtin_code"], nt.Int8Flags, 0))
            builtin = int(_scalar(code, _OPERATOR_CODE["builtin_code"], nt.Int32Flags, 0))
            codes.append(max(deprecated, builtin))
        return tuple(
            OperatorInfo(
                builtin_code=codes[int(_scalar(op, _OPERATOR["opcode_index"], nt.Uint32Flags, 0))],
                inputs=tuple(int(i) for i in _numbers(op, _OPERATOR["inputs"], "int32")),
                outputs=tuple(int(i) for i in _numbers(op, _OPERATOR["outputs"], "int32")),
            )
            for op in _tables(self._subgraph, _SUBGRAPH["operators"])
        )

    def metadata(self, name: str) -> bytes | None:
        """The bytes of the metadata entry `name`, or None."""
        for entry in _tables(self._root, _MODEL["metadata"]):
            if _string(entry, _METADATA["name"]) == name:
                return self.buffer_data(int(_scalar(entry, _METADATA["buffer"], nt.Uint32Flags, 0)))
        return None

    def weights_fingerprint(self) -> str:
        """sha256 (hex) over the type, shape and data of every constant tensor of subgraph 0.

        Metadata, signatures, names and the I/O lists do not enter it, so the
        fingerprint of a model is the same before and after tflstm rewrites them.
        """
        digest = hashlib.sha256()
        for tensor in self.tensors:
            data = self.buffer_data(tensor.buffer)
            if data:
                digest.update(f"{tensor.dtype}:{list(tensor.shape)}:".encode())
                digest.update(data)
        return digest.hexdigest()
