"""Checks on a converted flatbuffer: fused LSTM ops and op versions."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from tflstm import flatbuf, fused_op
from tflstm.convert.errors import ConversionError

OLDEST_RUNTIME = "tflite-runtime 2.14"



@cache
def _max_versions() -> dict[str, int | None]:
    """Highest op version per builtin op that `OLDEST_RUNTIME` loads (None: no kernel).

    Measured by building a one-op model for every (op, version) and loading it.
    """
    table = resources.files("tflstm.convert").joinpath("tflite_runtime_2_14_ops.json")
    return json.loads(table.read_text())["max_versions"]


def fused_lstm_ops(model: Any, expected: int) -> list[Any]:
    """The fused LSTM ops of subgraph 0, checked to be exactly `expected` many.

    Raises:
        ConversionError: when another number of fused ops is found (an LSTM layer
            was converted op by op, e.g. into a WHILE loop), with the op list.
    """
    found = flatbuf.ops_named(model, fused_op.OP_NAME)
    if len(found) != expected or len(model.subgraphs) != 1:
        names = flatbuf.op_names(model)
        raise ConversionError(
            f"Expected {expected} {fused_op.OP_NAME} op(s), one per LSTM layer, in one subgraph; "
            f"the converter produced {len(found)} in {len(model.subgraphs)} subgraph(s). "
            f"Operators of subgraph 0: {names}. Build the layers with tflstm.TFLiteLSTMCell "
            "inside tflstm.dynamic_rnn."
        )
    return found


def loop_body_name_clashes(graph_def: Any) -> list[str]:
    """Node names a `GraphDef` shares with the bodies of its while loops.

    To find the layer hints, the converter copies every node of a
    `dynamic_rnn` loop's body into the graph by name. TensorFlow adds a loop
    counter to each body at its top level (`add`, with the constant `add/y`),
    so a graph op of such a name (e.g. an unscoped `x + 1.0` is `add`) makes
    the conversion fail with "Unknown input node 'add/y'".
    """
    bodies = {node.attr["body"].func.name for node in graph_def.node if node.op in ("While", "StatelessWhile")}
    inner = {
        node.name for function in graph_def.library.function if function.signature.name in bodies
        for node in function.node_def
    }
    return sorted(inner & {node.name for node in graph_def.node})


def check_op_versions(model: Any) -> None:
    """Raises ConversionError if an op needs a newer runtime than `OLDEST_RUNTIME`."""
    too_new = []
    for code in model.operatorCodes:
        name = flatbuf.op_code_name(code)
        limit = _max_versions().get(name)
        if limit is None:
            too_new.append(f"{name} (no kernel)")
        elif code.version > limit:
            too_new.append(f"{name} v{code.version} (max v{limit})")
    if too_new:
        raise ConversionError(
            f"The converted model uses op versions that {OLDEST_RUNTIME} cannot load: "
            f"{', '.join(too_new)}."
        )
