"""The metadata tflstm embeds in every `.tflite` it writes: one schema, one module.

The converter writes it and the runtime reads it, so both import these types and
`read_metadata`. It is stored as UTF-8 JSON in the flatbuffer's metadata entry
`METADATA_NAME` (and as a `.json` sidecar by the command-line converter).
`tflstm.flatbuf` imports `TensorSpec` from here, so the functions that read a
flatbuffer import it when called.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from tflstm import fused_op

if TYPE_CHECKING:
    from tflstm.flatbuf import ModelView

FORMAT_VERSION = 1
METADATA_NAME = "tflstm"
STEP_SIGNATURE = "step"
SEQUENCE_SIGNATURE = "sequence"

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
MODEL_KINDS = ("sequence", "step")
STATE_KINDS = ("h", "c")

TOLERANCES = {"float32": 1e-5, "float16": 5e-3, "dynamic": 0.1, "int8": 0.15}
"""Max abs error against TensorFlow's float32 outputs that verification accepts, per
quantization (outputs of order 1, e.g. probabilities). Measured errors are well
below: see README.md."""


class MetadataError(ValueError):
    """The model carries no usable tflstm metadata, or metadata that does not fit it."""


def state_name(layer: str, kind: str) -> str:
    """Name of one state tensor in signatures and state mappings: `<layer>/<kind>`."""
    if kind not in STATE_KINDS:
        raise ValueError(f"State kind must be one of {STATE_KINDS}, got {kind!r}.")
    return f"{layer}/{kind}"


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One model input or output.

    Attributes:
        name: signature name of the tensor.
        shape: static shape.
        dtype: numpy dtype name ("float32", "int8", ...).
        scale, zero_point: quantization of an integer tensor (real = scale *
            (q - zero_point)); None for float tensors.
        tensor_index: index of the tensor in subgraph 0.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None
    tensor_index: int = -1

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if (self.scale is None) != (self.zero_point is None):
            raise ValueError(f"{self.name}: give both scale and zero_point, or neither.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (shape as a list)."""
        return {**dataclasses.asdict(self), "shape": list(self.shape)}


@dataclasses.dataclass(frozen=True)
class StateSpec(TensorSpec):
    """One LSTM state tensor (a variable tensor of a fused op).

    Attributes:
        layer: the layer's name (its variable scope's last part).
        kind: "h" (output state) or "c" (cell state).
    """

    layer: str = ""
    kind: str = "h"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in STATE_KINDS:
            raise ValueError(f"State kind must be one of {STATE_KINDS}, got {self.kind!r}.")


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
    """What a runtime needs to stream a tflstm model.

    Attributes:
        kind: "step" (one time step per invoke, state exposed) or "sequence".
        quantization: one of `QUANTIZATIONS`.
        inputs: the feature input(s), in signature order.
        outputs: the model outputs, in signature order (states excluded).
        states: the state tensors, layer by layer, h before c.
        fingerprint: `weights_fingerprint()` of the model.
        time_steps: time steps per invoke (1 for step models, k for chunk models:
            step models converted with `steps_per_call=k`).
        batch_size: batch size the model was built with.
        converter: versions of tflstm and TensorFlow that wrote the model.
        normalization: `{"mean": [...], "std": [...]}` per input feature, applied
            by the runtime as (x - mean) / std before the model; None for none.
        format_version: version of this schema.
    """

    kind: str
    quantization: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    states: tuple[StateSpec, ...]
    fingerprint: str
    time_steps: int
    batch_size: int
    converter: dict[str, str] = dataclasses.field(default_factory=dict)
    normalization: dict[str, list[float]] | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"Model kind must be one of {MODEL_KINDS}, got {self.kind!r}.")
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(
                f"Quantization must be one of {QUANTIZATIONS}, got {self.quantization!r}."
            )
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "states", tuple(self.states))
        if self.normalization is not None:
            depth = self.inputs[0].shape[-1] if self.inputs else None
            mean, std = self.normalization.get("mean"), self.normalization.get("std")
            if mean is None or std is None or len(mean) != depth or len(std) != depth:
                raise ValueError(
                    f"`normalization` must hold `mean` and `std` with one value per input feature "
                    f"({depth}), got {self.normalization!r}."
                )
            if any(not v > 0 for v in std):
                raise ValueError(f"`normalization` std values must be > 0, got {std!r}.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        """Inverse of `to_dict`; raises ValueError on another format version."""
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"tflstm metadata format version {version!r} is not supported; this tflstm "
                f"reads version {FORMAT_VERSION}."
            )
        fields = dict(data)
        fields["inputs"] = tuple(TensorSpec(**t) for t in data["inputs"])
        fields["outputs"] = tuple(TensorSpec(**t) for t in data["outputs"])
        fields["states"] = tuple(StateSpec(**t) for t in data["states"])
        return cls(**fields)

    def to_json(self) -> str:
        """Pretty JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelMetadata:
        """Parses `to_json` output."""
        return cls.from_dict(json.loads(text))


def weights_fingerprint(view: ModelView) -> str:
    """sha256 (hex) over the type, shape and data of every constant tensor of subgraph 0.

    Metadata, signatures, names and the I/O lists do not enter it, so the
    fingerprint of a model is the same before and after tflstm rewrites them.
    """
    digest = hashlib.sha256()
    for index in range(view.num_tensors):
        data = view.tensor_data(index)
        if data:
            spec = view.tensor_spec(index)
            digest.update(f"{spec.dtype}:{list(spec.shape)}:".encode())
            digest.update(data)
    return digest.hexdigest()


def read_metadata(content: bytes | ModelView) -> ModelMetadata:
    """The tflstm metadata embedded in `.tflite` bytes (or a `ModelView` of them).

    Raises:
        MetadataError: there is none, or it is unreadable.
        tflstm.flatbuf.FlatbufferError: the bytes are not a readable model.
    """
    view = _view(content)
    data = view.metadata(METADATA_NAME)
    if data is None:
        raise MetadataError(
            "The model has no tflstm metadata: convert it with tflstm.convert.from_session."
        )
    try:
        return ModelMetadata.from_json(data)
    except (ValueError, TypeError, KeyError) as err:
        raise MetadataError(f"The model's tflstm metadata is unreadable: {err}") from err


def derive_metadata(view: ModelView) -> ModelMetadata:
    """Metadata for a fused-LSTM model that tflstm did not write (e.g. stock tf-keras).

    States are named `lstm_<k>/h` and `lstm_<k>/c` by fused-op order; the input
    is the subgraph's first non-state input and the outputs its non-state outputs.

    Raises:
        MetadataError: the model is not a single-subgraph fused-LSTM step model.
    """
    lstm_ops = [op for op in view.operators if op.builtin_code == fused_op.BUILTIN_CODE]
    if not lstm_ops or view.num_subgraphs != 1:
        raise MetadataError(
            f"Expected a model with {fused_op.OP_NAME} ops in one subgraph, got "
            f"{len(lstm_ops)} such op(s) in {view.num_subgraphs} subgraph(s): only fused LSTMs "
            "keep their state in variable tensors the runtime can carry."
        )
    states = []
    for k, op in enumerate(lstm_ops):
        layer = f"lstm_{k}"
        for kind in STATE_KINDS:
            index = op.inputs[fused_op.STATE_SLOTS[kind]] if len(op.inputs) > fused_op.STATE_SLOTS[kind] else -1
            if index < 0 or not view.is_variable(index):
                raise MetadataError(f"State input {kind!r} of fused LSTM op {k} is not a variable tensor.")
            spec = view.tensor_spec(index, state_name(layer, kind))
            states.append(StateSpec(**vars(spec), layer=layer, kind=kind))
    state_indices = {s.tensor_index for s in states}
    inputs = [view.tensor_spec(i) for i in view.inputs if i not in state_indices]
    outputs = [view.tensor_spec(i) for i in view.outputs if i not in state_indices]
    if len(inputs) != 1 or not outputs:
        raise MetadataError(
            f"Expected one feature input and at least one output besides the states, got "
            f"{len(inputs)} input(s) and {len(outputs)} output(s)."
        )
    batch = states[0].shape[0]
    feature = dataclasses.replace(inputs[0], name=inputs[0].name or "input")
    return ModelMetadata(
        kind="step",
        quantization="int8" if feature.dtype == "int8" or states[0].dtype == "int8" else "float32",
        inputs=(feature,),
        outputs=tuple(dataclasses.replace(o, name=o.name or f"output_{k}") for k, o in enumerate(outputs)),
        states=tuple(states),
        fingerprint=weights_fingerprint(view),
        time_steps=max(1, int(np.prod(feature.shape[:-1])) // max(batch, 1)),
        batch_size=batch,
        converter={"derived_by": "tflstm (no tflstm metadata in the model)"},
    )


def _view(content: bytes | ModelView) -> ModelView:
    from tflstm.flatbuf import ModelView

    return content if isinstance(content, ModelView) else ModelView(bytes(content))
