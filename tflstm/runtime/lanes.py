"""Lanes: where one stream's LSTM state lives and how that stream is stepped.

Three kinds, chosen by `StreamingModel`:

* `OwnInterpreterLane`: the stream has an interpreter of its own; its state
  never leaves that interpreter (no copies, ever), and it steps in parallel with
  other such streams.
* `SwapLane`: streams of a batch-1 model share one interpreter; each keeps its
  state in memory of its own, swapped into the interpreter when it steps after
  another stream (one copy out, one in, when the interpreter keeps its state
  tensors next to each other).
* `RowsLane`: rows of a batched model's `StateTable` (a row stream, or the
  model's own rows 0..batch-1); `step_rows` steps up to `batch_size` row lanes
  per invoke.

Every lane takes its executor's lock around whatever touches the interpreter, so
lanes may be used from any thread: steps of streams sharing an interpreter are
serialized, and the state of a stream never changes under another thread's step.
Every lane reads and writes its state as a `State` ([rows, ...] per name).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tflstm.runtime.errors import StateError
from tflstm.runtime.executor import Executor, byte_view
from tflstm.runtime.state import State, StateTable, zero_rows


class OwnInterpreterLane:
    """A batch-1 stream with an interpreter of its own."""

    __slots__ = ("executor", "_lock", "step")
    rows = 1

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self._lock = executor.lock
        self.step = executor.bind_step()
        """One time step of this stream."""
        executor.write_state({s.name: zero_rows(s, 1) for s in executor.state_specs})

    def step_prepared(self, prepared: np.ndarray, axes: tuple[int, ...]) -> Any:
        """`step` for an input `Inputs.prepare` made."""
        with self._lock:
            return self.executor.run_prepared(prepared, axes)

    def read(self) -> State:
        """A copy of the state, by name."""
        with self._lock:
            return self.executor.read_state(1)

    def write(self, state: State) -> None:
        """Replaces the state (checked by the caller)."""
        with self._lock:
            self.executor.write_state(state)

    def close(self) -> None:
        """Nothing to free but the interpreter, which goes with the lane."""


class SwapLane:
    """A batch-1 stream sharing one interpreter with others; its state is swapped in to step."""

    __slots__ = ("executor", "_lock", "_arrays", "_load_pairs", "_save_pairs", "step")
    rows = 1

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self._lock = executor.lock
        # Byte views (`byte_view`): copying between memoryviews costs less than half of a numpy assignment.
        if executor.state_span is not None:  # one block in the interpreter's layout: one copy each way
            block = np.empty(executor.state_bytes, np.uint8)
            self._arrays = [
                block[offset : offset + view.nbytes].view(view.dtype).reshape(view.shape)
                for offset, view in zip(executor.state_offsets, executor.state_views)
            ]
            interpreter, own = [byte_view(executor.state_span)], [byte_view(block)]
        else:
            self._arrays = [np.empty_like(view) for view in executor.state_views]
            interpreter = [byte_view(view) for view in executor.state_views]
            own = [byte_view(array) for array in self._arrays]
        for spec, array in zip(executor.state_specs, self._arrays):
            array[...] = zero_rows(spec, 1)
        self._load_pairs = list(zip(interpreter, own))
        self._save_pairs = list(zip(own, interpreter))
        self.step = executor.bind_step(self, self._swap_in)
        """One time step of this stream."""

    def step_prepared(self, prepared: np.ndarray, axes: tuple[int, ...]) -> Any:
        """`step` for an input `Inputs.prepare` made."""
        with self._lock:
            if self.executor.resident is not self:
                self._swap_in()
            return self.executor.run_prepared(prepared, axes)

    def _swap_in(self) -> None:
        """The previous owner's state out of the interpreter, this lane's in (lock held)."""
        executor = self.executor
        if executor.resident is not None:
            executor.resident.save()
        for target, source in self._load_pairs:
            target[:] = source
        executor.resident = self

    def save(self) -> None:
        """Interpreter -> this lane's memory (it stops being resident; lock held)."""
        for target, source in self._save_pairs:
            target[:] = source

    def load(self) -> None:
        """This lane's memory -> interpreter (lock held)."""
        for target, source in self._load_pairs:
            target[:] = source

    def read(self) -> State:
        """A copy of the state, by name."""
        with self._lock:
            if self.executor.resident is self:
                return self.executor.read_state(1)
            return {spec.name: array.copy() for spec, array in zip(self.executor.state_specs, self._arrays)}

    def write(self, state: State) -> None:
        """Replaces the state (checked by the caller)."""
        with self._lock:
            if self.executor.resident is self:
                self.executor.resident = None  # this lane's memory becomes the truth
            for spec, array in zip(self.executor.state_specs, self._arrays):
                array[...] = state[spec.name]

    def close(self) -> None:
        """Leaves the interpreter's buffers to nobody if they held this lane's state."""
        with self._lock:
            if self.executor.resident is self:
                self.executor.resident = None


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
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise StateError("This stream was removed: its rows may belong to another stream now.")

    def _resident_rows(self) -> tuple[int, ...] | None:
        resident = self.executor.resident
        return resident.rows if isinstance(resident, _RowGroup) else None

    def _release_if_resident(self) -> None:
        resident = self._resident_rows()
        if resident is not None and set(self.rows_index) & set(resident):
            self.executor.release()

    def step(self, x: Any) -> Any:
        """A time step of these rows: x [features] for a row stream, the whole batch for the model's own."""
        if self.rows == 1:
            return step_rows([self], self.executor.inputs.prepare_rows([x]))[0]
        with self.executor.lock:
            self._check_open()
            if self._resident_rows() != self.rows_index:
                self.executor.switch_to(_RowGroup(self.executor, self.table, self.rows_index))
            return self.executor.run(x)

    def read(self) -> State:
        """A copy of the state, by name."""
        with self.executor.lock:
            self._check_open()
            self._release_if_resident()
            return self.table.read(self.rows_index)

    def write(self, state: State) -> None:
        """Replaces the state (checked by the caller)."""
        with self.executor.lock:
            self._check_open()
            self._release_if_resident()
            self.table.write(self.rows_index, state)

    def close(self) -> None:
        """Returns the rows to the table; the lane refuses to be used afterwards."""
        with self.executor.lock:
            if self.closed:
                return
            self._release_if_resident()
            for row in self.rows_index:
                self.table.remove_row(row)
            self.closed = True


def step_rows(lanes: Sequence[RowsLane], rows: np.ndarray) -> list[Any]:
    """One invoke for up to batch_size single-row lanes of one executor.

    Args:
        lanes: the row lanes, one per row of `rows`.
        rows: their inputs, converted by `Inputs.prepare_rows` ([len(lanes), depth]).

    Returns:
        One result per lane.
    """
    first = lanes[0]
    executor = first.executor
    with executor.lock:
        for lane in lanes:
            lane._check_open()  # noqa: SLF001 - same module
        index = tuple(lane.rows_index[0] for lane in lanes)
        if first._resident_rows() != index:  # noqa: SLF001 - same module
            executor.switch_to(_RowGroup(executor, first.table, index))
        return executor.run_rows(rows)
