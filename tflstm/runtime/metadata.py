"""What the runtime knows of a model: tflstm metadata, or the same derived from the flatbuffer.

Models written by tflstm carry `tflstm.format.ModelMetadata`. For other fused-LSTM
models (e.g. a tf-keras LSTM converted with the stock TFLiteConverter), the state
tensors are found as the variable tensors at the fused ops' state slots.
"""

from __future__ import annotations

import numpy as np

from tflstm import fused_op
from tflstm.format import METADATA_NAME, ModelMetadata, StateSpec, TensorSpec, state_name
from tflstm.runtime.errors import ModelError
from tflstm.tflite_reader import TensorInfo, TFLiteModelView


def _spec(info: TensorInfo, name: str) -> TensorSpec:
    return TensorSpec(name, info.shape, info.dtype, info.scale, info.zero_point, info.index)


def derive_metadata(view: TFLiteModelView) -> ModelMetadata:
    """Metadata for a fused-LSTM model that tflstm did not write.

    States are named `lstm_<k>/h` and `lstm_<k>/c` by fused-op order; the input
    is the subgraph's first non-state input and the outputs its non-state outputs.
    """
    lstm_ops = [op for op in view.operators if op.builtin_code == fused_op.BUILTIN_CODE]
    if not lstm_ops or view.num_subgraphs != 1:
        raise ModelError(
            f"Expected a model with {fused_op.OP_NAME} ops in one subgraph, got "
            f"{len(lstm_ops)} such op(s) in {view.num_subgraphs} subgraph(s): only fused LSTMs "
            "keep their state in variable tensors the runtime can carry."
        )
    states = []
    for k, op in enumerate(lstm_ops):
        for kind in ("h", "c"):
            info = view.tensors[op.inputs[fused_op.STATE_SLOTS[kind]]]
            if not info.is_variable:
                raise ModelError(f"State tensor {info.index} of fused LSTM op {k} is not a variable tensor.")
            spec = _spec(info, state_name(f"lstm_{k}", kind))
            states.append(StateSpec(**vars(spec), layer=f"lstm_{k}", kind=kind))
    state_indices = {s.tensor_index for s in states}
    inputs = [view.tensors[i] for i in view.inputs if i not in state_indices]
    outputs = [view.tensors[i] for i in view.outputs if i not in state_indices]
    if len(inputs) != 1 or not outputs:
        raise ModelError(
            f"Expected one feature input and at least one output besides the states, got "
            f"{len(inputs)} input(s) and {len(outputs)} output(s)."
        )
    batch = states[0].shape[0]
    return ModelMetadata(
        kind="step",
        quantization="int8" if inputs[0].dtype == "int8" or states[0].dtype == "int8" else "float32",
        inputs=(_spec(inputs[0], inputs[0].name or "input"),),
        outputs=tuple(_spec(o, o.name or f"output_{k}") for k, o in enumerate(outputs)),
        states=tuple(states),
        fingerprint=view.weights_fingerprint(),
        time_steps=max(1, int(np.prod(inputs[0].shape[:-1])) // batch),
        batch_size=batch,
        converter={"derived_by": "tflstm.runtime (no tflstm metadata in the model)"},
    )


def load_metadata(view: TFLiteModelView) -> ModelMetadata:
    """The model's tflstm metadata, or metadata derived from its fused ops."""
    data = view.metadata(METADATA_NAME)
    if data is None:
        return derive_metadata(view)
    try:
        return ModelMetadata.from_json(data)
    except (ValueError, TypeError, KeyError) as err:
        raise ModelError(f"The model's tflstm metadata is unreadable: {err}") from err


def open_model(content: bytes) -> TFLiteModelView:
    """A read-only view of `.tflite` bytes; ModelError if they are not a model."""
    try:
        return TFLiteModelView(content)
    except ValueError as err:
        raise ModelError(str(err)) from err


def read_metadata(content: bytes) -> ModelMetadata:
    """The tflstm metadata embedded in `.tflite` bytes; ModelError if there is none."""
    view = open_model(content)
    if view.metadata(METADATA_NAME) is None:
        raise ModelError("The model has no tflstm metadata: convert it with tflstm.convert.from_session.")
    return load_metadata(view)
