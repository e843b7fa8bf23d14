"""Flatbuffer rewrites after conversion that need TensorFlow's view of the graph.

The TensorFlow converter legalizes every hinted layer into one fused op, but it
drops the cell and projection clip values, leaves the state tensors unnamed and
some output shapes unset. These functions put that right; the generic edits
(signatures, metadata) are `tflstm.flatbuf`'s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tflstm import flatbuf, fused_op
from tflstm.convert.errors import ConversionError
from tflstm.format import StateSpec, state_name
from tflstm.train.cell import TFLiteLSTMCell


def set_static_shape(model: Any, index: int, shape: tf.TensorShape) -> None:
    """Gives tensor `index` the static `shape` TensorFlow knows where the converter left it unset or dynamic.

    The converter writes e.g. a batched step model's output as [1, 1, K] with the
    signature [1, -1, K]; the interpreter then allocates [1, N, K], which the
    metadata must say.
    """
    tensor = model.subgraphs[0].tensors[index]
    unset = tensor.shape is None or len(tensor.shape) == 0
    signature = tensor.shapeSignature
    dynamic = signature is not None and len(signature) == shape.rank and any(int(d) < 0 for d in signature)
    if shape.is_fully_defined() and shape.rank and (unset or dynamic):
        tensor.shape = np.array(shape.as_list(), dtype=np.int32)
        tensor.shapeSignature = None


def ops_by_cell(model: Any, ops: Sequence[Any], cells: Sequence[TFLiteLSTMCell]) -> list[Any]:
    """The fused op of each cell, in cell order, found by the name of its input-to-input weight.

    The converter names a weight tensor after the variable it was read from
    (`rnn_1/beta/input_to_input_w`, with a digit appended when float16
    quantization inserts a DEQUANTIZE), whatever order it puts parallel layers in.

    Raises:
        ConversionError: a cell's weight is found at no fused op, or at several.
    """
    tensors = model.subgraphs[0].tensors
    slot = fused_op.INPUT_WEIGHTS["input"]
    names = [flatbuf.tensor_name(tensors[op.inputs[slot]]) for op in ops]
    ordered = []
    for cell in cells:
        variable = cell.variables[fused_op.weight_name("input", "input")].op.name
        pattern = re.compile(re.escape(variable) + r"\d*")
        found = [op for op, name in zip(ops, names) if pattern.fullmatch(name)]
        if len(found) != 1:
            raise ConversionError(
                f"Expected one fused op reading weight {variable!r} of layer {cell.name!r}, found "
                f"{len(found)}; the fused ops' input weights are {names}."
            )
        ordered.extend(found)
    return ordered


def configure_layers(
    model: Any, ops: Sequence[Any], cells: Sequence[TFLiteLSTMCell]
) -> list[StateSpec]:
    """Matches fused ops to cells, sets their clips and names their state tensors.

    Ops are matched to cells by weight name (`ops_by_cell`), so parallel layers
    keep their own names whatever order the converter put them in; the weight
    shapes are checked as well.

    Returns:
        The state tensors, layer by layer, h before c.
    """
    tensors = model.subgraphs[0].tensors
    states = []
    for op, cell in zip(ops_by_cell(model, ops, cells), cells, strict=True):
        weights = tensors[op.inputs[fused_op.INPUT_WEIGHTS["input"]]]
        h = int(op.inputs[fused_op.OUTPUT_STATE])
        c = int(op.inputs[fused_op.CELL_STATE])
        units, out = int(weights.shape[0]), int(tensors[h].shape[-1])
        if (units, out, int(tensors[c].shape[-1])) != (cell.num_units, cell.output_size, cell.num_units):
            raise ConversionError(
                f"Fused op for layer {cell.name!r} has {units} units and output size {out}; "
                f"expected {cell.num_units} units and output size {cell.output_size}."
            )
        for index in (h, c):
            if not tensors[index].isVariable:
                raise ConversionError(
                    f"State tensor {index} of layer {cell.name!r} is not a variable tensor."
                )
        options = op.builtinOptions
        options.cellClip = float(cell.cell_clip or 0.0)
        options.projClip = float(cell.proj_clip or 0.0)
        for kind, index in (("h", h), ("c", c)):
            name = state_name(cell.name, kind)
            tensors[index].name = name
            spec = flatbuf.tensor_spec(model, index, name)
            states.append(StateSpec(**vars(spec), layer=cell.name, kind=kind))
    return states


# The integer LSTM kernel (8x8_16) evaluates tanh(c) only for cell-state scales up
# to 2^-9 (c within +-64); a larger calibrated scale makes it compute garbage.
MAX_CELL_STATE_SCALE = 2.0**-9


def limit_cell_state_scales(model: Any, ops: Sequence[Any]) -> list[str]:
    """Caps the int16 cell-state scale of integer fused ops at `MAX_CELL_STATE_SCALE`.

    Calibration runs the representative steps back to back without resetting the
    state, so a cell that integrates over many sequences can calibrate to a range
    the kernel cannot evaluate. Capped cells saturate at +-64 instead.

    Returns:
        One message per capped layer, with the calibrated range.
    """
    tensors = model.subgraphs[0].tensors
    messages = []
    for k, op in enumerate(ops):
        index = int(op.inputs[fused_op.CELL_STATE])
        spec = flatbuf.tensor_spec(model, index)
        if spec.dtype != "int16" or spec.scale is None or spec.scale <= MAX_CELL_STATE_SCALE:
            continue
        tensors[index].quantization.scale = np.array([MAX_CELL_STATE_SCALE], dtype=np.float32)
        messages.append(
            f"fused LSTM op {k}: calibrated cell state range +-{spec.scale * 32768:g} exceeds the "
            f"+-{MAX_CELL_STATE_SCALE * 32768:g} the integer kernel supports; its cell state "
            "saturates there"
        )
    return messages

