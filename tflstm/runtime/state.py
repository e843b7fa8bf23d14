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
    return sum(rows * math.prod(spec.shape[1:]) * np.dtype(spec.dtype).itemsize for spec in specs)


def pack_state(specs: Sequence[StateSpec], state: Mapping[str, np.ndarray], rows: int = 1) -> bytes:
    """A checked state as raw little-endian bytes, the tensors in `specs` order.

    The compact form for state stores that keep the model's identity elsewhere
    (a key-value store, Flink's keyed state): no names, no header, no checksum.
    """
    checked = check_state(specs, state, rows)
    return b"".join(
        np.ascontiguousarray(checked[spec.name], dtype=np.dtype(spec.dtype).newbyteorder("<")).tobytes() for spec in specs
    )


def unpack_state(specs: Sequence[StateSpec], blob: bytes, rows: int = 1) -> State:
    """Inverse of `pack_state`; StateError unless `blob` has exactly the packed size."""
    expected = state_nbytes(specs, rows)
    if len(blob) != expected:
        raise StateError(f"A packed state of this model holds {expected} bytes, got {len(blob)}.")
    state, offset = {}, 0
    for spec in specs:
        dtype = np.dtype(spec.dtype).newbyteorder("<")
        count = rows * math.prod(spec.shape[1:])
        values = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
        state[spec.name] = values.reshape(rows, *spec.shape[1:]).astype(spec.dtype)
        offset += count * dtype.itemsize
    return state
