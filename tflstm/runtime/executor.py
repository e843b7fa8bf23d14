"""One interpreter of a step model, with numpy views over its buffers, stepping one time step.

The fused LSTM op keeps its h and c state in variable tensors between invokes.
An `Executor` holds views of the input, output and state buffers (made once:
the hot path copies through them instead of calling set_tensor/get_tensor and
never reshapes per step) and remembers whose state the state buffers hold (its
`resident`), so stepping the same stream again costs nothing extra.

An interpreter is not thread-safe: whoever calls `run`, `run_prepared`,
`run_rows`, `switch_to`, `release`, `read_state` or `write_state` holds `lock`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from tflstm.format import StateSpec
from tflstm.runtime.backend import Engine
from tflstm.runtime.errors import ModelError
from tflstm.runtime.finite import nonfinite_masks
from tflstm.runtime.io import Inputs, Outputs, check_finite, check_finite_normalized, drop_axes
from tflstm.runtime.state import PackedLayout, State, zero_state

_FLOAT32 = np.dtype(np.float32)


def _native_hot_path() -> ModuleType | None:
    if os.environ.get("TFLSTM_PURE_PYTHON") == "1":
        return None
    try:
        from tflstm.runtime import _hotpath
    except ImportError:
        return None
    return _hotpath


NATIVE = _native_hot_path()
"""`tflstm.runtime._hotpath` (the step hot path in C, built with the package where a C compiler is found), or
None: then the same hot path runs in Python. TFLSTM_PURE_PYTHON=1 in the environment forces None."""


def hot_path_name() -> str:
    """"C" when steps bind to the C hot path (`NATIVE`), else "Python"."""
    return "Python" if NATIVE is None else "C"


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
        "state_offsets", "resident", "lock", "_invoke", "_fast", "_check_finite", "_flat_input", "_by_rank",
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
        self.lock = threading.Lock()
        self._invoke = engine.invoke
        self._fast = inputs.fast and outputs.fast
        self._check_finite = not inputs.allow_nonfinite
        self._flat_input = self.input_view.reshape(-1)
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
        """Sets one call's input (one time step, or k for a chunk model), invokes, returns the output(s) (lock held).

        Raises:
            InputError: `x` is refused (see `Inputs.prepare`); nothing ran then.
        """
        return self.run_prepared(*self.inputs.prepare(x))

    def bind_step(
        self,
        owner: Resident | None = None,
        make_resident: Callable[[], None] | None = None,
        *,
        take_lock: bool = True,
    ) -> Callable[[Any], Any]:
        """The hot path: a function stepping one call (a time step, or a chunk), bound once.

        A float32 array of an accepted shape is copied (or normalized: one
        division when the means are all 0) straight into the input buffer and
        checked there for NaN/Inf; anything else goes through `Inputs.prepare`
        (`run`). The function is the C `Step` of `tflstm.runtime._hotpath` when
        that extension was built (see `NATIVE`), else the same logic in Python.

        Args:
            owner: the state owner to make resident before each step (None: the
                state in the buffers is the caller's, e.g. an own interpreter).
            make_resident: called (lock held) when `owner` is not resident.
            take_lock: take `self.lock` around each step. False: for callers
                that hold it already.
        """
        usual = min(self._by_rank)  # [depth] for a step model: tried first
        entries = [  # (accepted shape, the input buffer in that shape, copy of the output without the dropped axes)
            (shape, buffer, output.copy)
            for _, (shape, buffer, output) in sorted(self._by_rank.items(), key=lambda item: item[0] != usual)
        ]
        mean = self.inputs.mean if self.inputs.mean is not None and self.inputs.mean.any() else None  # x - 0 is x
        if NATIVE is not None:
            return NATIVE.Step(
                lock=self.lock if take_lock else None, executor=self, owner=owner, make_resident=make_resident,
                ndarray=np.ndarray, invoke=self._invoke, refused=_raise_refused, nonfinite=_raise_nonfinite,
                fallback=self.run, entries=entries if self._fast else [], count=self._flat_input.size,
                depth=self.inputs.depth, std=self.inputs.std, mean=mean, check=self._check_finite,
            )
        return self._python_step(owner, make_resident, take_lock, entries, mean)

    def _python_step(
        self,
        owner: Resident | None,
        make_resident: Callable[[], None] | None,
        take_lock: bool,
        entries: list[tuple[tuple[int, ...], np.ndarray, Callable[[], np.ndarray]]],
        mean: np.ndarray | None,
    ) -> Callable[[Any], Any]:
        """`bind_step` in Python. Everything it needs is looked up here, once: after an invoke of a large model
        the CPU caches are cold and every attribute lookup on the way costs. NaN/Inf are found with a few
        big-integer operations over the input's bytes (`nonfinite_masks`)."""
        lock = self.lock if take_lock else contextlib.nullcontext()
        executor, run, invoke = self, self.run, self._invoke
        fast, check, ndarray, float32 = self._fast, self._check_finite, np.ndarray, _FLOAT32
        std, subtract, divide = self.inputs.std, np.subtract, np.divide
        raw, order, from_bytes = byte_view(self._flat_input), sys.byteorder, int.from_bytes
        exponent, carry, top = nonfinite_masks(self._flat_input.size) if fast else (0, 0, 0)
        usual_shape, usual_buffer, usual_copy = entries[0]
        by_rank = {len(shape): (shape, buffer, copy) for shape, buffer, copy in entries}

        def step(x: Any) -> Any:
            with lock:
                if owner is not None and executor.resident is not owner:
                    make_resident()
                if type(x) is ndarray and x.dtype is float32 and fast:
                    shape = x.shape
                    if shape == usual_shape:
                        buffer, copy = usual_buffer, usual_copy
                    else:
                        entry = by_rank.get(len(shape))
                        if entry is None or shape != entry[0]:
                            return run(x)
                        _, buffer, copy = entry
                    if std is None:
                        buffer[...] = x
                    elif mean is None:  # normalized straight into the input buffer
                        divide(x, std, out=buffer)
                    else:
                        divide(subtract(x, mean, out=buffer), std, out=buffer)
                    if check and ((from_bytes(raw, order) & exponent) + carry) & top:
                        _raise_nonfinite(x, buffer)
                    try:
                        invoke()
                    except RuntimeError as err:
                        _raise_refused(err)
                    return copy()
                return run(x)

        return step

    def bind_packed_step(self, layout: PackedLayout) -> Callable[[Any, bytes | None], tuple[Any, bytes]]:
        """A function stepping one call from a packed state (`PackedLayout`), returning (y, new packed state).

        The packed bytes are copied straight into the state buffers and back out
        (one copy each way when the state tensors lie in `layout`'s order in one
        span), with no arrays made per call. Needs a little-endian host, the
        packed form's byte order. The step starts from the zero state when the
        packed state is None; a packed state is `check`ed first (size, NaN/Inf).
        """
        if sys.byteorder != "little":
            raise ValueError("Packed states are little-endian: step them with run_step on this host.")
        lock, release, step = self.lock, self.release, self.bind_step(take_lock=False)
        in_order = self.state_span is not None and self.state_offsets == [start for _, start, _ in layout.segments]
        targets = [byte_view(self.state_span)] if in_order else [byte_view(view) for view in self.state_views]
        slices = [slice(0, layout.nbytes)] if in_order else [slice(start, start + size) for _, start, size in layout.segments]
        parts = list(zip(targets, slices))
        check, zero = layout.check, memoryview(layout.pack(zero_state(layout.specs, layout.rows)))

        def step_packed(x: Any, packed: bytes | None) -> tuple[Any, bytes]:
            raw = zero if packed is None else check(packed)
            with lock:
                release()
                for target, part in parts:
                    target[:] = raw[part]
                y = step(x)
                return y, b"".join(targets) if len(targets) > 1 else bytes(targets[0])

        return step_packed

    def run_prepared(self, prepared: np.ndarray, axes: tuple[int, ...]) -> Any:
        """`run` for an input `Inputs.prepare` made: (array of the input tensor's shape, axes outputs drop)."""
        self.input_view[...] = prepared
        self._invoke_checked()
        return self.outputs.finish({name: view.copy() for name, view in self.output_views.items()}, axes)

    def run_rows(self, rows: np.ndarray) -> list[Any]:
        """One invoke for the first len(rows) rows of a batched model (`Inputs.prepare_rows` output)."""
        self.input_view[0, : len(rows)] = rows
        self._invoke_checked()
        return self.outputs.finish_rows({name: view[0].copy() for name, view in self.output_views.items()}, len(rows))

    def _invoke_checked(self) -> None:
        try:
            self._invoke()
        except RuntimeError as err:
            raise _refused(err) from err

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


def byte_view(array: np.ndarray) -> memoryview:
    """A writable byte view of a C-contiguous array: copies between byte views cost less than numpy assignments."""
    return memoryview(array).cast("B")


def _refused(err: RuntimeError) -> ModelError:
    return ModelError(f"The interpreter failed to run the model: {err}")


def _raise_refused(err: RuntimeError) -> None:
    """Raises the `ModelError` for the interpreter's `err`, chained to it (a hot path's handler)."""
    raise _refused(err) from err


def _raise_nonfinite(x: np.ndarray, normalized: np.ndarray) -> None:
    """Raises the `InputError` naming the NaN/Inf in `x`, or the overflow its normalization (in the input buffer,
    `normalized`) caused (a hot path's handler: called only when one of the two holds one)."""
    check_finite(x)
    check_finite_normalized(normalized)  # numpy warned of the overflow too: errstate costs a step


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
