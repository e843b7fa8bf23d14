"""Read and rewrite `.tflite` flatbuffers without TensorFlow.

A flat module of verbs over the TFLite schema's object API (`ModelT`), which
ai-edge-litert ships as `ai_edge_litert.schema_py_generated`. In-place mutators
return None.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from tflstm.tflite_reader import FILE_IDENTIFIER, TENSOR_DTYPES, check_identifier



def schema() -> ModuleType:
    """The generated TFLite schema module (object API)."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "Rewriting .tflite files needs ai-edge-litert's schema module: "
            "pip install ai-edge-litert"
        ) from err
    return schema_py_generated


def read_model(model: bytes | bytearray) -> Any:
    """Parses `.tflite` bytes into a mutable `ModelT`."""
    data = bytes(model)
    check_identifier(data)
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
    code = max(op_code.builtinCode, op_code.deprecatedBuiltinCode)
    return _enum_names(schema().BuiltinOperator).get(code, f"BUILTIN_{code}")


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
    """The tensor's name as str."""
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else (name or "")


def tensor_dtype(tensor: Any) -> str:
    """numpy dtype name of a `TensorT`, e.g. "float32"."""
    if tensor.type not in TENSOR_DTYPES:
        type_name = _enum_names(schema().TensorType).get(tensor.type, tensor.type)
        raise ValueError(f"Tensor {tensor_name(tensor)!r} has unsupported type {type_name}.")
    return TENSOR_DTYPES[tensor.type]


def tensor_quantization(tensor: Any) -> tuple[float, int] | None:
    """Per-tensor (scale, zero_point), or None for a float tensor."""
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    if len(q.scale) != 1:
        raise ValueError(
            f"Tensor {tensor_name(tensor)!r} is quantized per channel ({len(q.scale)} scales); "
            "expected one scale."
        )
    return float(q.scale[0]), int(q.zeroPoint[0])


def set_metadata(model: Any, name: str, data: bytes) -> None:
    """Adds or replaces the metadata entry `name` with `data`."""
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
