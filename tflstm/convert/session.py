"""`from_session`: TensorFlow graph with tflstm layers -> fused-LSTM `.tflite` bytes."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import tensorflow as tf

from tflstm import __version__, flatbuf, integrity
from tflstm.convert import checks, fused_layers, quantize as quantize_lib
from tflstm.convert.quantize import RepresentativeDataset
from tflstm.format import (
    METADATA_NAME, SEQUENCE_SIGNATURE, STEP_SIGNATURE, ModelMetadata, state_name, weights_fingerprint,
)
from tflstm.format import read_metadata as metadata_of
from tflstm.train.cell import TFLiteLSTMCell
from tflstm.train.rnn import LoopRecord, loop_records

log = logging.getLogger(__name__)


def _signature_name(tensor: tf.Tensor) -> str:
    name = tensor.name
    return name[:-2] if name.endswith(":0") else name.replace(":", "_")


def _loops_feeding(outputs: Sequence[tf.Tensor], loops: list[LoopRecord]) -> list[LoopRecord]:
    """The loops whose outputs or final state the `outputs` depend on, in build order."""
    seen: set[tf.Operation] = set()
    pending = [t.op for t in outputs]
    while pending:
        op = pending.pop()
        if op not in seen:
            seen.add(op)
            pending.extend(t.op for t in op.inputs)
            pending.extend(op.control_inputs)
    return [
        loop for loop in loops
        if loop.outputs.op in seen or any(t.op in seen for state in loop.final_state for t in state)
    ]


def _check_unique_layer_names(cells: Sequence[TFLiteLSTMCell]) -> None:
    """Refuses layers that share a name: their states would share `<layer>/h` and `<layer>/c`."""
    counts = Counter(cell.name for cell in cells)
    shared = sorted(name for name, count in counts.items() if count > 1)
    if shared:
        raise ValueError(
            f"LSTM layers must have unique names, because each layer's state is named after it "
            f"(`<layer>/h`, `<layer>/c`); these names are used by more than one layer: {shared}. "
            "Give the cells distinct `name=` values (e.g. when building several dynamic_rnn calls)."
        )


def from_session(
    sess: tf.compat.v1.Session,
    input_tensors: Sequence[tf.Tensor],
    output_tensors: Sequence[tf.Tensor],
    *,
    quantize: str = "float32",
    representative_dataset: RepresentativeDataset | None = None,
    int8_io: bool = False,
    streaming: bool = False,
    steps_per_call: int = 1,
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
) -> bytes:
    """Converts a graph built with `tflstm.dynamic_rnn` into a fused-LSTM `.tflite`.

    Every LSTM layer becomes one `UNIDIRECTIONAL_SEQUENCE_LSTM` op; the result is
    checked and ConversionError is raised otherwise. The model carries tflstm
    metadata (`tflstm.format.ModelMetadata`) and a signature: `sequence`, or
    `step` for streaming models.

    Args:
        sess: a session holding the graph and its trained variables.
        input_tensors: the feature placeholder(s), time-major [time, batch, depth]
            with static shapes.
        output_tensors: tensors to output. They may include tensors of
            `dynamic_rnn`'s final state: the model then outputs the fused ops'
            state tensors, which hold the final state after an invoke.
        quantize: "float32", "float16", "dynamic" or "int8". Default: "float32".
        representative_dataset: required for "int8": a callable returning an
            iterable of input lists (feed the steps of sequences in order for a
            step model). Default: None.
        int8_io: "int8" only: int8 inputs and outputs. Default: False (float32).
        streaming: the graph was built with `steps_per_call` time steps; expose
            every layer's h and c state as extra inputs and outputs named
            `<layer>/h`, `<layer>/c` and add the `step` signature. Default: False.
        steps_per_call: streaming only: time steps per invoke, 1 for a step
            model, k > 1 for a chunk model (k steps per call, the state carried
            between calls). Default: 1.
        normalization: (mean, std) per input feature, recorded in the metadata
            for the runtime to apply as (x - mean) / std; the graph itself must
            take normalized inputs. Default: None.

    Returns:
        The `.tflite` flatbuffer.

    Raises:
        ValueError: on bad arguments.
        ConversionError: when the converted model is not what was asked for.
    """
    loops = _loops_feeding(output_tensors, loop_records(sess.graph))
    if not loops:
        raise ValueError(
            "No tflstm.dynamic_rnn feeds the requested outputs: build the LSTM layers with "
            "tflstm.TFLiteLSTMCell inside tflstm.dynamic_rnn."
        )
    cells = [cell for loop in loops for cell in loop.cells]
    _check_unique_layer_names(cells)
    final_states = {
        layer_state[k].name: state_name(cell.name, kind)
        for loop in loops
        for cell, layer_state in zip(loop.cells, loop.final_state)
        for k, kind in ((1, "h"), (0, "c"))
    }
    inputs, outputs = list(input_tensors), list(output_tensors)
    if len(inputs) != 1 or not outputs:
        raise ValueError(
            f"Give one feature input and at least one output tensor, got {len(inputs)} input(s) and "
            f"{len(outputs)} output(s)."
        )
    if not isinstance(steps_per_call, int) or steps_per_call < 1 or (steps_per_call > 1 and not streaming):
        raise ValueError(
            f"`steps_per_call` must be a positive int, and 1 unless streaming=True, got {steps_per_call!r} "
            f"with streaming={streaming}."
        )
    if streaming and any(t.shape[0] != steps_per_call for t in inputs):
        raise ValueError(
            f"A streaming model takes steps_per_call={steps_per_call} time step(s) per invoke: build the "
            f"graph with inputs of shape [{steps_per_call}, batch, depth], got {[t.shape.as_list() for t in inputs]}."
        )
    if any(not t.shape.is_fully_defined() or t.shape.rank != 3 for t in inputs):
        raise ValueError(
            "Inputs must be time-major [time, batch, depth] with static shapes (rebuild the graph "
            f"for the target shape), got {[t.shape.as_list() if t.shape.rank else t.shape for t in inputs]}."
        )
    if streaming and any(t.name in final_states for t in outputs):
        raise ValueError(
            "A streaming model outputs every layer's state already (`<layer>/h`, `<layer>/c`): "
            "drop the final-state tensors from `output_tensors`."
        )
    clashes = checks.loop_body_name_clashes(sess.graph.as_graph_def())
    if clashes:
        raise ValueError(
            f"Graph nodes named {clashes} (e.g. an unscoped `x + 1.0`, which is `add` with the constant `add/y`) "
            "share their names with the step counter TensorFlow puts in every dynamic_rnn loop, which the "
            "converter copies into the graph by name. Build these ops inside a tf.name_scope (e.g. "
            "`with tf.name_scope('head'):`)."
        )
    graph_outputs = [t for t in outputs if t.name not in final_states]
    # Converting only state outputs would prune the loop: keep its output meanwhile.
    carriers = [] if graph_outputs else [loops[-1].outputs]

    converter = tf.compat.v1.lite.TFLiteConverter.from_session(
        sess, inputs, graph_outputs + carriers
    )
    quantize_lib.configure(converter, quantize, representative_dataset, int8_io)
    model = flatbuf.read_model(converter.convert())

    subgraph = model.subgraphs[0]
    fused = checks.fused_lstm_ops(model, expected=len(cells))
    for message in fused_layers.limit_cell_state_scales(model, fused):
        log.warning("%s", message)
    states = fused_layers.configure_layers(model, fused, cells)
    state_index = {spec.name: spec.tensor_index for spec in states}
    converted_outputs = iter(subgraph.outputs)
    output_pairs = [
        (final_states[t.name], state_index[final_states[t.name]])
        if t.name in final_states
        else (_signature_name(t), int(next(converted_outputs)))
        for t in outputs
    ]
    input_pairs = [(_signature_name(t), int(i)) for t, i in zip(inputs, subgraph.inputs, strict=True)]
    subgraph.outputs = [index for _, index in output_pairs]
    for tensor, (_, index) in zip(outputs, output_pairs):
        fused_layers.set_static_shape(model, index, tensor.shape)
    if streaming:
        state_pairs = [(spec.name, spec.tensor_index) for spec in states]
        subgraph.inputs = [*subgraph.inputs, *(index for _, index in state_pairs)]
        subgraph.outputs = [*subgraph.outputs, *(index for _, index in state_pairs)]
        flatbuf.add_signature(model, STEP_SIGNATURE, input_pairs + state_pairs, output_pairs + state_pairs)
    else:
        flatbuf.add_signature(model, SEQUENCE_SIGNATURE, input_pairs, output_pairs)

    input_shape = inputs[0].shape.as_list()
    metadata = ModelMetadata(
        kind="step" if streaming else "sequence",
        quantization=quantize,
        inputs=tuple(flatbuf.tensor_spec(model, i, n) for n, i in input_pairs),
        outputs=tuple(flatbuf.tensor_spec(model, i, n) for n, i in output_pairs),
        states=tuple(states),
        fingerprint=weights_fingerprint(flatbuf.ModelView(flatbuf.write_model(model))),
        time_steps=int(input_shape[0]),
        batch_size=int(input_shape[1]),
        converter={"tflstm": __version__, "tensorflow": tf.__version__},
        normalization=None if normalization is None else {
            "mean": [float(v) for v in normalization[0]], "std": [float(v) for v in normalization[1]],
        },
        checksum=integrity.CHECKSUM_PLACEHOLDER,
    )
    flatbuf.set_metadata(model, METADATA_NAME, metadata.to_json().encode())
    checks.check_op_versions(model)
    sealed = integrity.seal(flatbuf.write_model(model))
    view = flatbuf.ModelView(sealed)
    integrity.check_checksum(view, metadata_of(view))
    integrity.check_metadata(metadata, view)
    return sealed

