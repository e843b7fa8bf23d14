"""`StreamingModel`: one time step per call, with the LSTM state carried explicitly."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tflstm.format import STEP_SIGNATURE, ModelMetadata, TensorSpec
from tflstm.runtime.backend import make_interpreter
from tflstm.runtime.errors import InputError, ModelError, StateError
from tflstm.runtime.metadata import read_metadata

State = dict[str, np.ndarray]


def _quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.scale is None:
        return x.astype(spec.dtype, copy=False)
    info = np.iinfo(spec.dtype)
    q = np.round(x / spec.scale) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def _dequantize(y: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.scale is None:
        return y
    return (y.astype(np.float32) - spec.zero_point) * np.float32(spec.scale)


class StreamingModel:
    """A tflstm step model run one time step at a time.

    Args:
        model: path to a `.tflite` step model written by tflstm, or its bytes.
        num_threads: interpreter threads. Default: 1.
        backend: "auto", "litert", "tflite_runtime" or "tf". Default: "auto".
    """

    def __init__(self, model: str | Path | bytes, *, num_threads: int = 1, backend: str = "auto") -> None:
        content = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
        self.metadata: ModelMetadata = read_metadata(content)
        if self.metadata.kind != "step":
            raise ModelError(
                f"Expected a step model (converted with streaming=True), got a "
                f"{self.metadata.kind!r} model."
            )
        if len(self.metadata.inputs) != 1:
            raise ModelError(f"Expected one feature input, got {len(self.metadata.inputs)}.")
        self._interpreter, self.backend = make_interpreter(bytes(content), num_threads, backend)
        self._runner = self._interpreter.get_signature_runner(STEP_SIGNATURE)
        self._input = self.metadata.inputs[0]
        self._state = self.zero_state()

    @property
    def batch_size(self) -> int:
        """Streams stepped together per invoke (the model's batch)."""
        return self.metadata.batch_size

    @property
    def input_depth(self) -> int:
        """Features per time step."""
        return self._input.shape[-1]

    def zero_state(self) -> State:
        """The initial state: zeros (the zero point for quantized states), by state name."""
        return {
            s.name: np.full(s.shape, s.zero_point or 0, dtype=s.dtype) for s in self.metadata.states
        }

    def _check_state(self, state: Mapping[str, np.ndarray]) -> None:
        expected = {s.name: s for s in self.metadata.states}
        if set(state) != set(expected):
            raise StateError(f"Expected state names {sorted(expected)}, got {sorted(state)}.")
        for name, value in state.items():
            spec = expected[name]
            value = np.asarray(value)
            if value.shape != spec.shape or value.dtype != np.dtype(spec.dtype):
                raise StateError(
                    f"State {name!r} must be {spec.dtype} {list(spec.shape)}, got "
                    f"{value.dtype} {list(value.shape)}."
                )

    def _features(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        depth, batch = self.input_depth, self.batch_size
        if x.shape not in ((depth,), (batch, depth)) or (x.ndim == 1 and batch != 1):
            want = f"[{depth}]" if batch == 1 else f"[{batch}, {depth}]"
            raise InputError(f"`x` must be one time step of shape {want}, got {list(x.shape)}.")
        if not np.issubdtype(x.dtype, np.floating):
            raise InputError(f"`x` must hold floats, got {x.dtype}.")
        return _quantize(x.reshape(self._input.shape).astype(np.float32, copy=False), self._input)

    def run_step(self, x: np.ndarray, state: Mapping[str, np.ndarray]) -> tuple[np.ndarray, State]:
        """One step from `state`; leaves the model's own state untouched.

        Args:
            x: float [features] or [batch, features], one time step.
            state: the state to start from, by name (see `zero_state`).

        Returns:
            (y, new_state): y is float32 [outputs] for a 1-D `x`, else
            [batch, outputs]; new_state maps the same names to new arrays.
        """
        self._check_state(state)
        result = self._runner(**{self._input.name: self._features(x)}, **state)
        output = self.metadata.outputs[0]
        y = _dequantize(result[output.name], output).reshape(self.batch_size, -1)
        new_state = {name: result[name] for name in state}
        return (y[0] if np.ndim(x) == 1 else y), new_state

    def step(self, x: np.ndarray) -> np.ndarray:
        """One step from the model's own state, which advances; see `run_step`."""
        y, self._state = self.run_step(x, self._state)
        return y

    @property
    def state(self) -> State:
        """A copy of the current state, by name."""
        return {name: value.copy() for name, value in self._state.items()}

    @state.setter
    def state(self, value: Mapping[str, np.ndarray]) -> None:
        self._check_state(value)
        self._state = {name: np.array(v) for name, v in value.items()}

    def reset(self) -> None:
        """Returns to the zero state."""
        self._state = self.zero_state()
