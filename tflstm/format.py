"""The metadata tflstm embeds in every `.tflite` it writes: one schema, one module.

The converter writes it and the runtime reads it, so both import these types.
It is stored as UTF-8 JSON in the flatbuffer's metadata entry `METADATA_NAME`
(and as a `.json` sidecar by the command-line converter).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

FORMAT_VERSION = 1
METADATA_NAME = "tflstm"
STEP_SIGNATURE = "step"
SEQUENCE_SIGNATURE = "sequence"

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
MODEL_KINDS = ("sequence", "step")
STATE_KINDS = ("h", "c")


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
        fingerprint: `TFLiteModelView.weights_fingerprint()` of the model.
        time_steps: time steps per invoke (1 for step models).
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
