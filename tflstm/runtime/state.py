"""LSTM state as the runtime holds it: named arrays, checked against the model's state tensors.

A state maps each state tensor's name (`<layer>/h`, `<layer>/c`) to an array
[rows, ...]: one row per stream (the batch dimension of the tensor). h and c keep
the tensor's dtype: float32, or int8 (h) and int16 (c) in full-int8 models, where
the zero state is the zero point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from tflstm.format import StateSpec
from tflstm.runtime.errors import StateError
from tflstm.runtime.finite import has_nonfinite, nonfinite_masks

State = dict[str, np.ndarray]


def zero_rows(spec: StateSpec, rows: int) -> np.ndarray:
    """The zero state of one state tensor for `rows` streams: [rows, *spec.shape[1:]]."""
    return np.full((rows, *spec.shape[1:]), spec.zero_point or 0, dtype=spec.dtype)


def zero_state(specs: Sequence[StateSpec], rows: int) -> State:
    """The zero state of every state tensor, by name, for `rows` streams."""
    return {spec.name: zero_rows(spec, rows) for spec in specs}


def check_state(specs: Sequence[StateSpec], state: Mapping[str, np.ndarray], rows: int) -> State:
    """`state` as arrays, checked to hold every state tensor for `rows` streams.

    Raises:
        StateError: names, shapes or dtypes that are not the model's.
    """
    expected = {spec.name: spec for spec in specs}
    if not isinstance(state, Mapping) or set(state) != set(expected):
        given = sorted(state) if isinstance(state, Mapping) else type(state).__name__
        raise StateError(f"Expected state names {sorted(expected)}, got {given}.")
    checked = {}
    for name, spec in expected.items():
        value = np.asarray(state[name])
        shape = (rows, *spec.shape[1:])
        if value.shape != shape or value.dtype != np.dtype(spec.dtype):
            raise StateError(
                f"State {name!r} must be {spec.dtype} {list(shape)}, got {value.dtype} {list(value.shape)}."
            )
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise StateError(f"State {name!r} holds non-finite values (NaN or Inf): it would poison every step.")
        checked[name] = value
    return checked


class StateTable:
    """The state rows of a batched model's streams: per state tensor, an array [capacity, ...].

    Rows are handed out by `add_row` and recycled by `remove_row`; the model's
    own streams are rows 0..batch-1.
    """

    def __init__(self, specs: Sequence[StateSpec], rows: int) -> None:
        self.specs = tuple(specs)
        self.arrays = zero_state(self.specs, rows)
        self.size = rows
        self._free: list[int] = []

    def add_row(self) -> int:
        """A new zeroed row (reusing a removed one when there is one)."""
        if self._free:
            row = self._free.pop()
        else:
            row = self.size
            self.size += 1
            capacity = len(next(iter(self.arrays.values())))
            if row >= capacity:
                for spec in self.specs:
                    grown = zero_rows(spec, max(2 * capacity, 8))
                    grown[:capacity] = self.arrays[spec.name]
                    self.arrays[spec.name] = grown
        self.write((row,), zero_state(self.specs, 1))
        return row

    def remove_row(self, row: int) -> None:
        """Makes `row` available for a new stream."""
        self._free.append(row)

    @staticmethod
    def index(rows: tuple[int, ...]) -> slice | list[int]:
        """A numpy index of `rows`: a slice (no copies) when they are consecutive."""
        first = rows[0]
        if rows == tuple(range(first, first + len(rows))):
            return slice(first, first + len(rows))
        return list(rows)

    def read(self, rows: tuple[int, ...]) -> State:
        """A copy of `rows`, by name: [len(rows), ...]."""
        index = self.index(rows)
        return {name: array[index].copy() for name, array in self.arrays.items()}

    def write(self, rows: tuple[int, ...], state: Mapping[str, np.ndarray]) -> None:
        """Stores `state` ([len(rows), ...] per name) into `rows`."""
        index = self.index(rows)
        for name, array in self.arrays.items():
            array[index] = state[name]


def state_nbytes(specs: Sequence[StateSpec], rows: int = 1) -> int:
    """Bytes of a packed state of `rows` streams (`pack_state`)."""
    return PackedLayout(specs, rows).nbytes


def pack_state(specs: Sequence[StateSpec], state: Mapping[str, np.ndarray], rows: int = 1) -> bytes:
    """A checked state as raw little-endian bytes, the tensors in `specs` order (see `PackedLayout`)."""
    return PackedLayout(specs, rows).pack(state)


def unpack_state(specs: Sequence[StateSpec], blob: bytes, rows: int = 1) -> State:
    """Inverse of `pack_state`; StateError unless `blob` is a packed state of `specs` (see `PackedLayout.check`)."""
    return PackedLayout(specs, rows).unpack(blob)


class PackedLayout:
    """The packed form of a model's state: raw little-endian bytes, the tensors in `specs` order.

    The compact form for state stores that keep the model's identity elsewhere
    (a key-value store, Flink's keyed state): no names, no header, no checksum.
    Build one per model and reuse it: `pack_state`/`unpack_state` build one per call.

    Attributes:
        specs: the state tensors, in packed order.
        rows: streams per packed state.
        segments: per state tensor, (spec, byte offset, byte count) in the packed bytes.
        nbytes: bytes of one packed state.
    """

    def __init__(self, specs: Sequence[StateSpec], rows: int = 1) -> None:
        self.specs, self.rows = tuple(specs), rows
        self.segments: list[tuple[StateSpec, int, int]] = []
        offset = 0
        for spec in self.specs:
            size = rows * math.prod(spec.shape[1:]) * np.dtype(spec.dtype).itemsize
            self.segments.append((spec, offset, size))
            offset += size
        self.nbytes = offset
        floats = [segment for segment in self.segments if np.dtype(segment[0].dtype).kind == "f"]
        self._other_floats = [segment for segment in floats if segment[0].dtype != "float32"]
        runs: list[list[tuple[StateSpec, int, int]]] = []  # float32 segments, neighbours merged: one check each
        for spec, start, size in (segment for segment in floats if segment[0].dtype == "float32"):
            if runs and runs[-1][-1][1] + runs[-1][-1][2] == start:
                runs[-1].append((spec, start, size))
            else:
                runs.append([(spec, start, size)])
        self._float32 = [(run, run[0][1], size, nonfinite_masks(size // 4))
                         for run, size in ((run, sum(size for _, _, size in run)) for run in runs)]

    def check(self, blob: bytes | bytearray | memoryview) -> memoryview:
        """`blob` as a byte view, checked to be a packed state of this layout with no NaN or Inf in it.

        Raises:
            StateError: not bytes, the wrong size, or a non-finite value.
        """
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise StateError(f"A packed state must be bytes, got {type(blob).__name__}.")
        raw = memoryview(blob).cast("B")
        if raw.nbytes != self.nbytes:
            raise StateError(f"A packed state of this model holds {self.nbytes} bytes, got {raw.nbytes}.")
        for run, start, size, masks in self._float32:
            if has_nonfinite(raw[start : start + size], masks, "little"):
                self._refuse_nonfinite(raw, run)
        if self._other_floats:
            self._refuse_nonfinite(raw, self._other_floats)
        return raw

    def pack(self, state: Mapping[str, np.ndarray]) -> bytes:
        """`state` (checked: names, shapes, dtypes, finite) as packed bytes."""
        checked = check_state(self.specs, state, self.rows)
        return b"".join(
            np.ascontiguousarray(checked[spec.name], dtype=np.dtype(spec.dtype).newbyteorder("<")).tobytes()
            for spec in self.specs
        )

    def unpack(self, blob: bytes | bytearray | memoryview) -> State:
        """The state packed in `blob` (`check`ed first), by name, in native byte order."""
        raw = self.check(blob)
        return {
            spec.name: self._values(raw, spec, start, size).reshape(self.rows, *spec.shape[1:]).astype(spec.dtype)
            for spec, start, size in self.segments
        }

    @staticmethod
    def _values(raw: memoryview, spec: StateSpec, start: int, size: int) -> np.ndarray:
        dtype = np.dtype(spec.dtype).newbyteorder("<")
        return np.frombuffer(raw, dtype, size // dtype.itemsize, start)

    @classmethod
    def _refuse_nonfinite(cls, raw: memoryview, segments: Sequence[tuple[StateSpec, int, int]]) -> None:
        """StateError naming the first of `segments` that holds a NaN or Inf, if one does."""
        for spec, start, size in segments:
            if not np.isfinite(cls._values(raw, spec, start, size)).all():
                raise StateError(f"State {spec.name!r} holds non-finite values (NaN or Inf): it would poison every step.")
