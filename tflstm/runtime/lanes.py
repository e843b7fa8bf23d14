"""Lanes: where one stream's LSTM state lives and how that stream is stepped.

Three kinds, chosen by `StreamingModel`:

* `OwnInterpreterLane`: the stream has an interpreter of its own; its state
  never leaves that interpreter (no copies, ever).
* `SwapLane`: streams of a batch-1 model share one interpreter; each keeps its
  state in arrays of its own, swapped into the interpreter when it steps after
  another stream (4 small copies out, 4 in, for a 2-layer model).
* `RowsLane`: rows of a batched model's `StateTable` (a row stream, or the
  model's own rows 0..batch-1); `step_rows` steps up to `batch_size` row lanes
  per invoke.

Every lane reads and writes its state as a `State` ([rows, ...] per name).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tflstm.runtime.executor import Executor
from tflstm.runtime.state import State, StateTable, zero_rows


class OwnInterpreterLane:
    """A batch-1 stream with an interpreter of its own."""

    rows = 1

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.step = executor.run  # bound once: stepping never swaps
        executor.write_state({s.name: zero_rows(s, 1) for s in executor.state_specs})

    def read(self) -> State:
        """A copy of the state, by name."""
        return self.executor.read_state(1)

    def write(self, state: State) -> None:
        """Replaces the state (checked by the caller)."""
        self.executor.write_state(state)

    def close(self) -> None:
        """Nothing to free but the interpreter, which goes with the lane."""


class SwapLane:
    """A batch-1 stream sharing one interpreter with others; its state is swapped in to step."""

    __slots__ = ("executor", "_arrays", "_load_pairs", "_save_pairs", "_run")
    rows = 1

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        # Byte views: copying between memoryviews costs less than half of a numpy assignment.
        if executor.state_span is not None:  # one block in the interpreter's layout: one copy each way
            block = np.empty(executor.state_bytes, np.uint8)
            self._arrays = [
                block[offset : offset + view.nbytes].view(view.dtype).reshape(view.shape)
                for offset, view in zip(executor.state_offsets, executor.state_views)
            ]
            interpreter, own = [_bytes(executor.state_span)], [_bytes(block)]
        else:
            self._arrays = [np.empty_like(view) for view in executor.state_views]
            interpreter = [_bytes(view) for view in executor.state_views]
            own = [_bytes(array) for array in self._arrays]
        for spec, array in zip(executor.state_specs, self._arrays):
            array[...] = zero_rows(spec, 1)
        self._load_pairs = list(zip(interpreter, own))
        self._save_pairs = list(zip(own, interpreter))
        self._run = executor.run  # bound once

    def step(self, x: Any) -> Any:
        """One time step of this stream."""
        if self.executor.resident is not self:
            self._swap_in()
        return self._run(x)

    def _swap_in(self) -> None:
        """The previous owner's state out of the interpreter, this lane's in."""
        executor = self.executor
        if executor.resident is not None:
            executor.resident.save()
        for target, source in self._load_pairs:
            target[:] = source
        executor.resident = self

    def save(self) -> None:
        """Interpreter -> this lane's arrays (it stops being resident)."""
        for target, source in self._save_pairs:
            target[:] = source

    def load(self) -> None:
        """This lane's arrays -> interpreter."""
        for target, source in self._load_pairs:
            target[:] = source

    def read(self) -> State:
        """A copy of the state, by name."""
        if self.executor.resident is self:
            return self.executor.read_state(1)
        return {spec.name: array.copy() for spec, array in zip(self.executor.state_specs, self._arrays)}

    def write(self, state: State) -> None:
        """Replaces the state (checked by the caller)."""
        if self.executor.resident is self:
            self.executor.resident = None  # the arrays become the truth
        for spec, array in zip(self.executor.state_specs, self._arrays):
            array[...] = state[spec.name]

    def close(self) -> None:
        """Leaves the interpreter's buffers to nobody if they held this lane's state."""
        if self.executor.resident is self:
            self.executor.resident = None


def _bytes(array: np.ndarray) -> memoryview:
    """A writable byte view of a C-contiguous array."""
    return memoryview(array).cast("B")


class _RowGroup:
    """Rows of a `StateTable` resident in a batched executor (the `Resident` of `RowsLane`s)."""

    def __init__(self, executor: Executor, table: StateTable, rows: tuple[int, ...]) -> None:
        self.executor, self.table, self.rows = executor, table, rows

    def save(self) -> None:
        index, count = StateTable.index(self.rows), len(self.rows)
        for spec, view in zip(self.executor.state_specs, self.executor.state_views):
            self.table.arrays[spec.name][index] = view[:count]

    def load(self) -> None:
        batch = self.executor.state_views[0].shape[0]
        rows = self.rows
        # Fill a partial batch with copies of the last row; their results are dropped.
        index = StateTable.index(rows) if len(rows) == batch else list(rows) + [rows[-1]] * (batch - len(rows))
        for spec, view in zip(self.executor.state_specs, self.executor.state_views):
            view[...] = self.table.arrays[spec.name][index]


class RowsLane:
    """Rows of a batched model's state table: one row stream, or the model's own batch."""

    def __init__(self, executor: Executor, table: StateTable, rows: tuple[int, ...]) -> None:
        self.executor, self.table, self.rows_index = executor, table, rows
        self.rows = len(rows)

    def _resident_rows(self) -> tuple[int, ...] | None:
        resident = self.executor.resident
        return resident.rows if isinstance(resident, _RowGroup) else None

    def step(self, x: Any) -> Any:
        """A time step of these rows: x [features] for a row stream, the whole batch for the model's own."""
        if self.rows == 1:
            return step_rows([self], [x])[0]
        if self._resident_rows() != self.rows_index:
            self.executor.switch_to(_RowGroup(self.executor, self.table, self.rows_index))
        return self.executor.run(x)

    def read(self) -> State:
        """A copy of the state, by name."""
        resident = self._resident_rows()
        if resident is not None and set(self.rows_index) & set(resident):
            self.executor.release()
        return self.table.read(self.rows_index)

    def write(self, state: State) -> None:
        """Replaces the state (checked by the caller)."""
        resident = self._resident_rows()
        if resident is not None and set(self.rows_index) & set(resident):
            self.executor.release()
        self.table.write(self.rows_index, state)

    def close(self) -> None:
        """Returns the row to the table."""
        resident = self._resident_rows()
        if resident is not None and set(self.rows_index) & set(resident):
            self.executor.release()
        for row in self.rows_index:
            self.table.remove_row(row)


def step_rows(lanes: Sequence[RowsLane], xs: Sequence[Any]) -> list[Any]:
    """One invoke for up to batch_size single-row lanes of one executor; returns one result each."""
    first = lanes[0]
    rows = tuple(lane.rows_index[0] for lane in lanes)
    if first._resident_rows() != rows:  # noqa: SLF001 - same module
        first.executor.switch_to(_RowGroup(first.executor, first.table, rows))
    return first.executor.run_rows(xs)

