"""One interpreter of a step model, with numpy views over its buffers, stepping one time step.

The fused LSTM op keeps its h and c state in variable tensors between invokes.
An `Executor` holds views of the input, output and state buffers (made once:
the hot path copies through them instead of calling set_tensor/get_tensor and
never reshapes per step) and remembers whose state the state buffers hold (its
`resident`), so stepping the same stream again costs nothing extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from tflstm.format import StateSpec
from tflstm.runtime.backend import Engine
from tflstm.runtime.io import Inputs, Outputs, drop_axes
from tflstm.runtime.state import State

_FLOAT32 = np.dtype(np.float32)


class Resident(Protocol):
    """Whatever owns the state an executor's state buffers hold."""

    def save(self) -> None:
        """Copies the state buffers back to the owner's own storage."""

    def load(self) -> None:
        """Copies the owner's state into the state buffers."""


class Executor:
    """One allocated interpreter and views over its buffers.

    Args:
        engine: the interpreter (`tflstm.runtime.backend.make_engine`).
        inputs: the feature input's conversion.
        outputs: the outputs' conversion.
        states: the state tensors, in metadata order.
    """

    __slots__ = (
        "engine", "inputs", "outputs", "state_specs", "input_view", "output_views", "state_views", "state_span",
        "state_offsets", "resident", "_invoke", "_fast", "_by_rank",
    )

    def __init__(self, engine: Engine, inputs: Inputs, outputs: Outputs, states: Sequence[StateSpec]) -> None:
        self.engine = engine  # keeps the interpreter, and so the viewed buffers, alive
        self.inputs, self.outputs = inputs, outputs
        self.state_specs = tuple(states)
        self.input_view = engine.view(inputs.spec.tensor_index)
        self.output_views = {spec.name: engine.view(spec.tensor_index) for spec in outputs.specs}
        self.state_views = [engine.view(spec.tensor_index) for spec in self.state_specs]  # [batch, ...] each
        self.state_span, self.state_offsets = _contiguous_span(self.state_views)
        self.resident: Resident | None = None  # whose state the state buffers hold; None: nobody's
        self._invoke = engine.invoke
        self._fast = inputs.fast and outputs.fast
        first = self.output_views[outputs.specs[0].name]
        # Input rank -> (accepted input shape, input view of that shape, first output view without the axes
        # the input dropped).
        self._by_rank = {
            rank: (shape, self.input_view.reshape(shape), drop_axes(first, axes))
            for rank, (shape, axes) in inputs.shapes.items()
        }

    @property
    def state_bytes(self) -> int:
        """Bytes of one batch of every state tensor together."""
        return sum(view.nbytes for view in self.state_views)

    def run(self, x: Any) -> Any:
        """Sets one call's input (one time step, or k for a chunk model), invokes, returns the output(s)."""
        if self._fast and type(x) is np.ndarray and x.dtype is _FLOAT32:  # the hot path
            entry = self._by_rank.get(x.ndim)
            if entry is not None and x.shape == entry[0]:
                entry[1][...] = x
                self._invoke()
                return entry[2].copy()
        prepared, axes = self.inputs.prepare(x)
        self.input_view[...] = prepared
        self._invoke()
        return self.outputs.finish({name: view.copy() for name, view in self.output_views.items()}, axes)

    def run_rows(self, xs: Sequence[Any]) -> list[Any]:
        """One invoke for the first len(xs) rows of a batched model: xs holds one [depth] row each."""
        self.input_view[0, : len(xs)] = self.inputs.prepare_rows(xs)
        self._invoke()
        return self.outputs.finish_rows({name: view[0].copy() for name, view in self.output_views.items()}, len(xs))

    def switch_to(self, resident: Resident) -> None:
        """Makes `resident`'s state the one in the state buffers, saving the previous owner's."""
        if self.resident is not None:
            self.resident.save()
        resident.load()
        self.resident = resident

    def release(self) -> None:
        """Saves the resident state to its owner and leaves the buffers to nobody."""
        if self.resident is not None:
            self.resident.save()
            self.resident = None

    def read_state(self, rows: int) -> State:
        """A copy of the first `rows` rows of the state buffers, by name."""
        return {spec.name: view[:rows].copy() for spec, view in zip(self.state_specs, self.state_views)}

    def write_state(self, state: State) -> None:
        """Copies `state` (full batch, by name) into the state buffers; nobody owns it then."""
        self.release()
        for spec, view in zip(self.state_specs, self.state_views):
            view[...] = state[spec.name]


def _contiguous_span(views: Sequence[np.ndarray]) -> tuple[np.ndarray | None, list[int]]:
    """One uint8 view over all `views` when they tile one gap-free span of memory, and each one's offset in it.

    Interpreters usually allocate the variable (state) tensors next to each other;
    then one copy moves a stream's whole state. Returns (None, []) otherwise.
    """
    if not views or any(not view.flags.c_contiguous for view in views):
        return None, []
    starts = [view.ctypes.data for view in views]
    first = min(starts)
    size = max(start + view.nbytes for start, view in zip(starts, views)) - first
    spans = sorted((start, start + view.nbytes) for start, view in zip(starts, views))
    if size != sum(view.nbytes for view in views) or any(a[1] != b[0] for a, b in zip(spans, spans[1:])):
        return None, []
    lowest = views[starts.index(first)]
    span = np.lib.stride_tricks.as_strided(lowest.reshape(-1).view(np.uint8), shape=(size,), strides=(1,))
    return span, [start - first for start in starts]
