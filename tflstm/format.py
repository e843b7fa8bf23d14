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
from tflstm.normalization import check as check_normalization

if TYPE_CHECKING:
    from tflstm.flatbuf import ModelView

FORMAT_VERSION = 2
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


DTYPES = ("float32", "float16", "int32", "uint8", "int64", "bool", "int16", "int8", "float64")
"""numpy dtype names a `TensorSpec` may hold (the tensor types tflstm reads)."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise MetadataError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One model input or output.

    Attributes:
        name: signature name of the tensor.
        shape: static shape, non-negative ints.
        dtype: numpy dtype name, one of `DTYPES`.
        scale, zero_point: quantization of an integer tensor (real = scale *
            (q - zero_point)); None for float tensors.
        tensor_index: index of the tensor in subgraph 0.

    Raises:
        MetadataError (a ValueError): a field of the wrong type or range.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None
    tensor_index: int = -1

    def __post_init__(self) -> None:
        _require(isinstance(self.name, str), f"A tensor name must be a string, got {self.name!r}.")
        _require(
            isinstance(self.shape, (tuple, list)) and all(_is_int(d) and d >= 0 for d in self.shape),
            f"{self.name}: shape must be a list of non-negative ints, got {self.shape!r}.",
        )
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        _require(self.dtype in DTYPES, f"{self.name}: dtype must be one of {DTYPES}, got {self.dtype!r}.")
        _require((self.scale is None) == (self.zero_point is None),
                 f"{self.name}: give both scale and zero_point, or neither.")
        if self.scale is not None:
            _require(_is_number(self.scale) and np.isfinite(self.scale) and self.scale > 0,
                     f"{self.name}: scale must be a finite number > 0, got {self.scale!r}.")
            _require(_is_int(self.zero_point), f"{self.name}: zero_point must be an int, got {self.zero_point!r}.")
            object.__setattr__(self, "scale", float(self.scale))
            object.__setattr__(self, "zero_point", int(self.zero_point))
        _require(_is_int(self.tensor_index) and self.tensor_index >= -1,
                 f"{self.name}: tensor_index must be an int >= 0, got {self.tensor_index!r}.")
        object.__setattr__(self, "tensor_index", int(self.tensor_index))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (shape as a list)."""
        return {**dataclasses.asdict(self), "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: Any) -> TensorSpec:
        """Inverse of `to_dict`; MetadataError on missing, unknown or ill-typed fields."""
        return _from_dict(cls, data)


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
        _require(isinstance(self.layer, str), f"{self.name}: layer must be a string, got {self.layer!r}.")
        _require(self.kind in STATE_KINDS, f"State kind must be one of {STATE_KINDS}, got {self.kind!r}.")


def _from_dict(cls: type, data: Any) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _require(isinstance(data, dict), f"Expected a JSON object for a {cls.__name__}, got {type(data).__name__}.")
    unknown = sorted(set(data) - set(fields))
    _require(not unknown, f"Unknown {cls.__name__} field(s) {unknown}.")
    missing = sorted(name for name, f in fields.items()
                     if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    _require(not missing, f"Missing {cls.__name__} field(s) {missing}.")
    return cls(**data)


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
    """What a runtime needs to stream a tflstm model.

    Attributes:
        kind: "step" (one time step per invoke, state exposed) or "sequence".
        quantization: one of `QUANTIZATIONS`.
        inputs: the feature input(s), in signature order.
        outputs: the model outputs, in signature order (states excluded).
        states: the state tensors, layer by layer, h before c.
        fingerprint: `weights_fingerprint()` of the model (64 hex digits).
        time_steps: time steps per invoke (1 for step models, k for chunk models:
            step models converted with `steps_per_call=k`).
        batch_size: batch size the model was built with.
        converter: versions of tflstm and TensorFlow that wrote the model.
        normalization: `{"mean": [...], "std": [...]}` per input feature, applied
            by the runtime as (x - mean) / std before the model; None for none.
        checksum: sha256 (hex) of the whole `.tflite` file with this value
            written as 64 zeros (`tflstm.integrity`); None for metadata derived
            from a model tflstm did not write.
        format_version: version of this schema.

    Raises:
        MetadataError (a ValueError): a field of the wrong type or range.
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
    checksum: str | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        _require(self.format_version == FORMAT_VERSION,
                 f"tflstm metadata format version {self.format_version!r} is not supported; this tflstm reads "
                 f"version {FORMAT_VERSION}: convert the model again with this tflstm.")
        _require(self.kind in MODEL_KINDS, f"Model kind must be one of {MODEL_KINDS}, got {self.kind!r}.")
        _require(self.quantization in QUANTIZATIONS,
                 f"Quantization must be one of {QUANTIZATIONS}, got {self.quantization!r}.")
        for field, kind in (("inputs", TensorSpec), ("outputs", TensorSpec), ("states", StateSpec)):
            value = getattr(self, field)
            _require(isinstance(value, (tuple, list)), f"`{field}` must be a list, got {type(value).__name__}.")
            value = tuple(v if isinstance(v, kind) else kind.from_dict(v) for v in value)
            object.__setattr__(self, field, value)
        _require(len(self.inputs) == 1, f"Expected one feature input, got {len(self.inputs)}.")
        _require(len(self.outputs) >= 1, "Expected at least one output, got none.")
        _require(len(self.states) >= 2 and len(self.states) % 2 == 0,
                 f"Expected an h and a c state per LSTM layer, got {len(self.states)} state(s).")
        for group in ((*self.inputs, *self.outputs), self.states):
            names = [t.name for t in group]
            _require(len(set(names)) == len(names), f"Tensor names must be unique, got {names}.")
        states = {s.name: s.tensor_index for s in self.states}
        for tensor in (*self.inputs, *self.outputs):  # a sequence model may output a final state under its name
            _require(states.get(tensor.name, tensor.tensor_index) == tensor.tensor_index,
                     f"{tensor.name!r} names a state tensor and tensor {tensor.tensor_index} at once.")
        _require(_is_hex(self.fingerprint), f"`fingerprint` must be 64 hex digits, got {self.fingerprint!r}.")
        _require(self.checksum is None or _is_hex(self.checksum),
                 f"`checksum` must be 64 hex digits or null, got {self.checksum!r}.")
        for field in ("time_steps", "batch_size"):
            value = getattr(self, field)
            _require(_is_int(value) and value >= 1, f"`{field}` must be an int >= 1, got {value!r}.")
        _require(isinstance(self.converter, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.converter.items()),
            f"`converter` must map names to version strings, got {self.converter!r}.")
        if self.normalization is not None:
            try:
                check_normalization(self.normalization, self.inputs[0].shape[-1] if self.inputs[0].shape else None)
            except ValueError as err:
                raise MetadataError(str(err)) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = dataclasses.asdict(self)
        for field in ("inputs", "outputs", "states"):
            data[field] = [t.to_dict() for t in getattr(self, field)]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ModelMetadata:
        """Inverse of `to_dict`; MetadataError on another format version or a bad field."""
        _require(isinstance(data, dict), f"Expected a JSON object for the metadata, got {type(data).__name__}.")
        version = data.get("format_version")
        _require(version == FORMAT_VERSION,
                 f"tflstm metadata format version {version!r} is not supported; this tflstm reads version "
                 f"{FORMAT_VERSION}: convert the model again with this tflstm.")
        return _from_dict(cls, data)

    def to_json(self) -> str:
        """Pretty JSON text (`"checksum": "<hex>"` appears exactly once in it)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelMetadata:
        """Parses `to_json` output; MetadataError on anything else."""
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            raise MetadataError(f"The tflstm metadata is not JSON: {err}.") from None
        return cls.from_dict(data)


def _is_hex(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


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
    except (MetadataError, TypeError) as err:
        raise MetadataError(f"The model's tflstm metadata is unreadable: {err}") from err


def fused_state_tensors(view: ModelView) -> list[tuple[int, str, int]]:
    """(op number, state kind, tensor index) of each fused LSTM op's h and c inputs, in op and `STATE_KINDS` order.

    Raises:
        MetadataError: a state input that is missing or not a variable tensor.
    """
    found = []
    for k, op in enumerate(op for op in view.operators if op.builtin_code == fused_op.BUILTIN_CODE):
        for kind in STATE_KINDS:
            slot = fused_op.STATE_SLOTS[kind]
            index = op.inputs[slot] if len(op.inputs) > slot else -1
            if index < 0 or not view.is_variable(index):
                raise MetadataError(f"State input {kind!r} of fused LSTM op {k} is not a variable tensor.")
            found.append((k, kind, index))
    return found


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
    for k, kind, index in fused_state_tensors(view):
        layer = f"lstm_{k}"
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
