"""`Stream`: one independent stream of a model, its own LSTM state over shared weights."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tflstm.format import StateSpec
from tflstm.runtime.errors import StateError
from tflstm.runtime.state import State, check_state, zero_state
from tflstm.runtime.state_file import read_state, write_state


class Lane(Protocol):
    """Where a stream's state lives and how it steps (see `tflstm.runtime.lanes`)."""

    rows: int

    def step(self, x: Any) -> Any:
        """One time step; returns the converted output(s)."""

    def step_prepared(self, prepared: np.ndarray, axes: tuple[int, ...]) -> Any:
        """`step` for an input `Inputs.prepare` made."""

    def read(self) -> State:
        """A copy of the state, by name."""

    def write(self, state: State) -> None:
        """Replaces the state with a checked one."""

    def close(self) -> None:
        """Frees what the lane holds."""


class Stream:
    """One stream: its own LSTM state, stepped one time step at a time.

    Created by `StreamingModel.stream(key)`; the model's own state is a stream
    too. The state has the shapes of the model's state tensors with one row per
    stream ([1, ...] for a keyed stream). May be used from any thread; steps of
    one stream are serialized.

    Args:
        key: the stream's key.
        lane: where its state lives (`tflstm.runtime.lanes`).
        specs: the model's state tensors.
        fingerprint: the model's weights fingerprint, which state files carry.
    """

    def __init__(self, key: Hashable, lane: Lane, specs: Sequence[StateSpec], fingerprint: str) -> None:
        self.key = key
        self._lane = lane
        self._specs = tuple(specs)
        self._fingerprint = fingerprint
        self.step = lane.step  # bound once: one call less per step on the hot path

    def step(self, x: Any) -> Any:  # the instance attribute above takes its place
        """One time step of this stream: x float [features]; returns its output."""
        return self._lane.step(x)

    @property
    def state(self) -> State:
        """A copy of this stream's state, by name."""
        self._check_open()
        return self._lane.read()

    @state.setter
    def state(self, value: Mapping[str, np.ndarray]) -> None:
        self._check_open()
        self._lane.write(check_state(self._specs, value, self._lane.rows))

    def reset(self) -> None:
        """Returns this stream to the zero state."""
        self._check_open()
        self._lane.write(zero_state(self._specs, self._lane.rows))

    def save_state(self, path: str | Path) -> None:
        """Writes this stream's state durably, tied to the model's weights."""
        write_state(path, self.state, self._fingerprint)

    def load_state(self, path: str | Path) -> None:
        """Restores a state written by `save_state` for this model; StateError otherwise."""
        self.state = read_state(path, self._fingerprint)

    def close(self) -> None:
        """Frees what the stream holds; using it afterwards raises StateError."""
        self.step = self._removed
        self._lane.close()

    def _check_open(self) -> None:
        if self.step == self._removed:
            self._removed()

    def _removed(self, x: Any = None) -> Any:
        raise StateError(f"Stream {self.key!r} was removed: get a new one with StreamingModel.stream(key).")
