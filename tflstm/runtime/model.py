"""`StreamingModel` and `Stream`: one time step per call, LSTM state carried explicitly.

How state is kept (the hot path never copies state it does not have to):

* Every stream's state is a set of rows in a `StateTable` (one numpy array per
  state tensor). The model's own state (`StreamingModel.step`) is rows
  0..batch-1; each `stream(key)` of a batch-1 model, or each row stream of a
  batched model, gets rows of its own.
* The interpreter's variable state tensors hold the state of the *resident*
  rows. Stepping the resident rows again costs nothing extra; stepping other
  rows first writes the resident ones back to the table and loads the new ones
  ("swap").
* With `streams="interpreter"`, each keyed stream of a batch-1 model gets an
  interpreter of its own, so round-robin stepping never swaps: ~140 KiB per
  stream measured for small models. `streams="auto"` picks it for models up to
  `INTERPRETER_PER_STREAM_MAX_BYTES`, and swapping for larger ones, whose
  step time dwarfs the swap.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tflstm.format import ModelMetadata, StateSpec, TensorSpec
from tflstm.runtime.backend import Engine, make_engine
from tflstm.runtime.errors import InputError, ModelError, StateError
from tflstm.runtime.metadata import load_metadata, open_model
from tflstm.runtime.state_file import read_state, write_state

State = dict[str, np.ndarray]
Output = np.ndarray | dict[str, np.ndarray]

INTERPRETER_PER_STREAM_MAX_BYTES = 256 * 1024
"""`streams="auto"` gives each stream its own interpreter up to this model size."""
STREAM_MODES = ("auto", "interpreter", "swap")


def _quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    info = np.iinfo(spec.dtype)
    q = np.round(x / np.float32(spec.scale)) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def _dequantize(y: np.ndarray, spec: TensorSpec) -> np.ndarray:
    return (y.astype(np.float32) - np.float32(spec.zero_point)) * np.float32(spec.scale)


def _zero(spec: TensorSpec, shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, spec.zero_point or 0, dtype=spec.dtype)


class StateTable:
    """State rows of many streams: per state name, an array [capacity, *row_shape]."""

    def __init__(self, specs: tuple[StateSpec, ...], batch_size: int) -> None:
        self.specs = specs
        self.row_shapes = {s.name: s.shape[1:] for s in specs}
        self.arrays = {s.name: _zero(s, (batch_size, *s.shape[1:])) for s in specs}
        self.size = batch_size
        self._free: list[int] = []
        self._row_views: dict[int, list[np.ndarray]] = {}

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
                    grown = _zero(spec, (max(2 * capacity, 8), *self.row_shapes[spec.name]))
                    grown[:capacity] = self.arrays[spec.name]
                    self.arrays[spec.name] = grown
                self._row_views.clear()  # they view the old arrays
        self.zero((row,))
        return row

    def remove_row(self, row: int) -> None:
        """Makes `row` available for a new stream."""
        self._free.append(row)

    def row_views(self, row: int) -> list[np.ndarray]:
        """Views of one row, [1, *row_shape] per state in spec order (cached)."""
        views = self._row_views.get(row)
        if views is None:
            views = self._row_views[row] = [self.arrays[s.name][row : row + 1] for s in self.specs]
        return views

    @staticmethod
    def index(rows: tuple[int, ...]) -> slice | list[int]:
        """A numpy index of `rows`: a slice (views, no copies) when they are consecutive."""
        first = rows[0]
        if rows[-1] - first == len(rows) - 1 and (len(rows) < 3 or rows == tuple(range(first, first + len(rows)))):
            return slice(first, first + len(rows))
        return list(rows)

    def zero(self, rows: tuple[int, ...]) -> None:
        """Sets `rows` to the zero state."""
        index = self.index(rows)
        for spec in self.specs:
            self.arrays[spec.name][index] = spec.zero_point or 0

    def read(self, rows: tuple[int, ...]) -> State:
        """A copy of `rows`, by name: [len(rows), *row_shape]."""
        index = self.index(rows)
        return {name: array[index].copy() for name, array in self.arrays.items()}

    def write(self, rows: tuple[int, ...], state: Mapping[str, np.ndarray]) -> None:
        """Stores `state` ([len(rows), *row_shape] per name) into `rows`."""
        index = self.index(rows)
        for name, array in self.arrays.items():
            array[index] = state[name].reshape(len(rows), *self.row_shapes[name])


_FLOAT32 = np.dtype(np.float32)


class _Bound:
    """An engine with numpy views over its input, output and state buffers, made once.

    The hot path copies into and out of these views instead of going through
    set_tensor/get_tensor, and never reshapes per step.
    """

    def __init__(self, engine: Engine, model: StreamingModel) -> None:
        self.engine = engine  # keeps the interpreter, and so the viewed buffers, alive
        self.invoke = engine.invoke
        self.input = engine.view(model._input.tensor_index)
        self.outputs = {o.name: engine.view(o.tensor_index) for o in model._outputs}
        self.states = {name: engine.view(index) for name, index, _ in model._state_slots}
        self.state_list = list(self.states.values())  # in metadata order, like StateTable.specs
        first = self.outputs[model._outputs[0].name]
        # Input rank -> (accepted input shape, first output view without the dropped leading 1s).
        self.by_rank = {
            rank: (shape, first.reshape(first.shape[drop:]) if all(d == 1 for d in first.shape[:drop]) else first)
            for rank, (shape, drop) in model._ranks.items()
        }


class StreamingModel:
    """A fused-LSTM step model run one time step at a time, with its state carried.

    Works on step models written by tflstm (`streaming=True`), and on other
    fused-LSTM `.tflite` files (e.g. a tf-keras LSTM converted by the stock
    TFLiteConverter), whose state tensors it finds in the flatbuffer. Not
    thread-safe: use one `StreamingModel` per thread.

    Args:
        model: path to a `.tflite` file, or its bytes.
        num_threads: interpreter threads. Default: 1.
        backend: "auto" (ai-edge-litert, then tflite-runtime, then TensorFlow),
            "litert", "tflite_runtime" or "tf". Default: "auto".
        streams: how `stream(key)` streams of a batch-1 model keep their state:
            "interpreter" (one interpreter each: no swaps), "swap" (share one
            interpreter, swapping state in and out) or "auto" (interpreters for
            models up to 256 KiB). Default: "auto".
        preprocess: optional stateless callable applied to every input before
            normalization, e.g. feature extraction. Default: None.
        postprocess: optional stateless callable applied to every output.
            Default: None.
        experimental_xnnpack: apply the XNNPACK delegate (speeds up dense layers on
            some CPUs, costs memory per interpreter). Default: False.
    """

    def __init__(
        self,
        model: str | Path | bytes,
        *,
        num_threads: int = 1,
        backend: str = "auto",
        streams: str = "auto",
        preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
        postprocess: Callable[[Output], Any] | None = None,
        experimental_xnnpack: bool = False,
    ) -> None:
        if streams not in STREAM_MODES:
            raise ValueError(f"`streams` must be one of {STREAM_MODES}, got {streams!r}.")
        if isinstance(model, (bytes, bytearray)):
            content, self._source = bytes(model), bytes(model)
        else:
            content, self._source = Path(model).read_bytes(), str(model)
        self.metadata: ModelMetadata = load_metadata(open_model(content))
        if self.metadata.kind != "step":
            raise ModelError(
                f"Expected a step model (converted with streaming=True), got a "
                f"{self.metadata.kind!r} model."
            )
        self._engine_options = {"num_threads": num_threads, "backend": backend, "xnnpack": experimental_xnnpack}
        engine = make_engine(self._source, **self._engine_options)
        self.backend = engine.backend
        self._input: TensorSpec = self.metadata.inputs[0]
        self._outputs = self.metadata.outputs
        self._states = self.metadata.states
        self._state_slots = tuple((s.name, s.tensor_index, s.shape) for s in self._states)
        self._preprocess, self._postprocess = preprocess, postprocess
        normalization = self.metadata.normalization
        self._mean = None if normalization is None else np.asarray(normalization["mean"], np.float32)
        self._std = None if normalization is None else np.asarray(normalization["std"], np.float32)
        if self.batch_size > 1 and self._input.shape != (1, self.batch_size, self.input_depth):
            raise ModelError(
                f"A batched step model must take time-major input [1, {self.batch_size}, depth], "
                f"got {list(self._input.shape)}."
            )
        self._table = StateTable(self._states, self.batch_size)
        self._own_rows = tuple(range(self.batch_size))
        self._resident: tuple[int, ...] | None = self._own_rows
        self._streams: dict[Hashable, Stream] = {}
        if streams == "auto":
            small = len(content) <= INTERPRETER_PER_STREAM_MAX_BYTES
            streams = "interpreter" if small and self.batch_size == 1 else "swap"
        if streams == "interpreter" and self.batch_size != 1:
            raise ValueError(
                f'`streams="interpreter"` needs a batch-1 model; this one has batch '
                f"{self.batch_size}: its streams are rows of the batch (use step_many)."
            )
        self.streams_mode = streams
        self._fast = (
            self._input.scale is None and self._mean is None and preprocess is None
            and postprocess is None and len(self._outputs) == 1 and self._outputs[0].scale is None
        )
        in_shape = self._input.shape
        leading_ones = next((k for k, d in enumerate(in_shape) if d != 1), len(in_shape))
        # Accepted input ranks -> (input shape without the dropped leading 1s, dims to drop from outputs).
        self._ranks = {len(in_shape) - k: (in_shape[k:], k) for k in range(leading_ones + 1)}
        self._main = _Bound(engine, self)

    # ---- properties ------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Rows of the model's batch: streams stepped together per invoke."""
        return self.metadata.batch_size

    @property
    def input_depth(self) -> int:
        """Features per time step."""
        return self._input.shape[-1]

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the state tensors (`<layer>/h`, `<layer>/c`)."""
        return tuple(s.name for s in self._states)

    # ---- input and output conversion -----------------------------------------------
    def _convert(self, x: np.ndarray) -> np.ndarray:
        """Float features -> the model's input dtype: normalization, quantization."""
        if x.dtype != np.float32:
            if not np.issubdtype(x.dtype, np.floating):
                raise InputError(f"`x` must hold floats, got {x.dtype}.")
            x = x.astype(np.float32)
        if self._mean is not None:
            x = (x - self._mean) / self._std
        if self._input.scale is not None:
            x = _quantize(x, self._input)
        return x

    def _prepare(self, x: Any) -> tuple[np.ndarray, int]:
        """x -> (model input array, leading dims to drop from outputs)."""
        if self._preprocess is not None:
            x = self._preprocess(x)
        x = np.asarray(x)
        shapes = self._ranks.get(x.ndim)
        if shapes is None or x.shape != shapes[0]:
            accepted = " or ".join(str(list(self._ranks[rank][0])) for rank in sorted(self._ranks))
            raise InputError(f"`x` must be one time step of shape {accepted}, got {list(x.shape)}.")
        return self._convert(x).reshape(self._input.shape), shapes[1]

    def _finish(self, raw: dict[str, np.ndarray], drop: int) -> Output:
        outputs = {}
        for spec in self._outputs:
            y = raw[spec.name]
            if spec.scale is not None:
                y = _dequantize(y, spec)
            outputs[spec.name] = y.reshape(y.shape[drop:]) if all(d == 1 for d in y.shape[:drop]) else y
        result: Output = outputs[self._outputs[0].name] if len(outputs) == 1 else outputs
        return result if self._postprocess is None else self._postprocess(result)

    def _run(self, bound: _Bound, x: Any) -> Output:
        """Sets the input, invokes and returns the finished output(s) of `bound`."""
        if self._fast and type(x) is np.ndarray and x.dtype is _FLOAT32:  # the hot path
            entry = bound.by_rank.get(x.ndim)
            if entry is not None and x.shape == entry[0]:
                bound.input[...] = x
                bound.invoke()
                return entry[1].copy()
        prepared, drop = self._prepare(x)
        bound.input[...] = prepared
        bound.invoke()
        return self._finish({name: view.copy() for name, view in bound.outputs.items()}, drop)

    # ---- moving state between the table and the interpreter ---------------------------
    def _evict(self) -> None:
        """Writes the resident rows' state from the interpreter back to the table."""
        rows = self._resident
        if rows is None:
            return
        self._resident = None
        if len(rows) == 1 and self.batch_size == 1:  # the common swap: plain copies between views
            for row_view, state_view in zip(self._table.row_views(rows[0]), self._main.state_list):
                row_view[...] = state_view
            return
        index, count = StateTable.index(rows), len(rows)
        arrays = self._table.arrays
        for name, view in self._main.states.items():
            arrays[name][index] = view[:count]

    def _load(self, rows: tuple[int, ...]) -> None:
        """Makes `rows` (at most batch_size of them) resident in the interpreter."""
        self._evict()
        if len(rows) == 1 and self.batch_size == 1:
            for row_view, state_view in zip(self._table.row_views(rows[0]), self._main.state_list):
                state_view[...] = row_view
            self._resident = rows
            return
        if len(rows) < self.batch_size:
            index = list(rows) + [rows[-1]] * (self.batch_size - len(rows))
        else:
            index = StateTable.index(rows)
        arrays = self._table.arrays
        for name, view in self._main.states.items():
            view[...] = arrays[name][index]
        self._resident = rows

    def _read_rows(self, rows: tuple[int, ...]) -> State:
        if self._resident == rows:
            return {name: view[: len(rows)].copy() for name, view in self._main.states.items()}
        return self._table.read(rows)

    def _write_rows(self, rows: tuple[int, ...], state: Mapping[str, np.ndarray]) -> None:
        if self._resident is not None and set(rows) & set(self._resident):
            self._evict()
        self._table.write(rows, state)

    def _check_state(self, state: Mapping[str, np.ndarray], batch: int) -> State:
        expected = {s.name: s for s in self._states}
        if set(state) != set(expected):
            raise StateError(f"Expected state names {sorted(expected)}, got {sorted(state)}.")
        checked = {}
        for name, value in state.items():
            spec = expected[name]
            value = np.asarray(value)
            shape = (batch, *spec.shape[1:])
            if value.shape != shape or value.dtype != np.dtype(spec.dtype):
                raise StateError(
                    f"State {name!r} must be {spec.dtype} {list(shape)}, got {value.dtype} "
                    f"{list(value.shape)}."
                )
            checked[name] = value
        return checked

    # ---- the model's own state ------------------------------------------------------
    def zero_state(self) -> State:
        """The initial state of the whole batch, by name (zero, or the quantized zero)."""
        return {s.name: _zero(s, s.shape) for s in self._states}

    def run_step(self, x: Any, state: Mapping[str, np.ndarray]) -> tuple[Output, State]:
        """One step from `state`; leaves every stream's state untouched.

        Args:
            x: float [features] (batch-1 models) or [batch, features], one time step.
            state: the state to start from, by name, shapes as in `zero_state()`.

        Returns:
            (y, new_state): y is float32 [outputs] for a 1-D `x`, else
            [batch, outputs]; new_state maps the same names to new arrays.
        """
        checked = self._check_state(state, self.batch_size)
        self._evict()
        states = self._main.states
        for name, view in states.items():
            view[...] = checked[name]
        y = self._run(self._main, x)
        return y, {name: view.copy() for name, view in states.items()}

    def step(self, x: Any) -> Output:
        """One step of the model's own state, which advances; see `run_step`."""
        if self._resident is not self._own_rows:
            self._load(self._own_rows)
        return self._run(self._main, x)

    @property
    def state(self) -> State:
        """A copy of the model's own state, by name."""
        return self._read_rows(self._own_rows)

    @state.setter
    def state(self, value: Mapping[str, np.ndarray]) -> None:
        self._write_rows(self._own_rows, self._check_state(value, self.batch_size))

    def reset(self) -> None:
        """Returns the model's own state to the zero state."""
        self.state = self.zero_state()

    def save_state(self, path: str | Path) -> None:
        """Writes the model's own state durably, tied to this model's weights."""
        write_state(path, self.state, self.metadata.fingerprint)

    def load_state(self, path: str | Path) -> None:
        """Restores a state written by `save_state` for this model; StateError otherwise."""
        self.state = read_state(path, self.metadata.fingerprint)

    # ---- many streams -----------------------------------------------------------
    def stream(self, key: Hashable) -> Stream:
        """The stream named `key`, created at the zero state on first use."""
        found = self._streams.get(key)
        if found is None:
            found = self._streams[key] = Stream(self, key)
        return found

    def remove_stream(self, key: Hashable) -> None:
        """Forgets stream `key` and frees what it held; KeyError if there is none."""
        self._streams.pop(key)._close()

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._streams)

    def __len__(self) -> int:
        return len(self._streams)

    def step_many(self, inputs: Mapping[Hashable, Any]) -> dict[Hashable, Output]:
        """Steps several streams, `batch_size` of them per invoke.

        Args:
            inputs: stream key -> float [features], one time step each.

        Returns:
            stream key -> output, as each stream's own `step` would return.
        """
        if self.batch_size == 1:
            return {key: self.stream(key).step(x) for key, x in inputs.items()}
        keys = list(inputs)
        outputs: dict[Hashable, Output] = {}
        for start in range(0, len(keys), self.batch_size):
            chunk = keys[start : start + self.batch_size]
            outputs.update(zip(chunk, self._step_rows([self.stream(k) for k in chunk], [inputs[k] for k in chunk])))
        return outputs

    def _step_rows(self, streams: list[Stream], xs: list[Any]) -> list[Output]:
        """One invoke for up to batch_size row streams; conversions are vectorized."""
        rows = tuple(s._row for s in streams)
        if self._resident != rows:
            self._load(rows)
        if self._preprocess is not None:
            xs = [self._preprocess(x) for x in xs]
        try:
            stacked = np.asarray(xs)
        except ValueError:
            stacked = np.empty(0)  # ragged: reported below
        if stacked.shape != (len(xs), self.input_depth):
            shape = next((list(np.shape(x)) for x in xs if np.shape(x) != (self.input_depth,)), "ragged")
            raise InputError(
                f"`x` of a row stream must be one time step of shape [{self.input_depth}], got {shape}."
            )
        main = self._main
        main.input[0, : len(xs)] = self._convert(stacked)
        main.invoke()
        raw = {name: view[0].copy() for name, view in main.outputs.items()}
        if self._fast:
            y = raw[self._outputs[0].name]
            return [y[k] for k in range(len(xs))]
        return [self._finish({n: y[k : k + 1] for n, y in raw.items()}, 1) for k in range(len(xs))]


class Stream:
    """One independent stream of a `StreamingModel`: its own state, shared weights.

    Created by `StreamingModel.stream(key)`. Its state has the shapes of a
    batch-1 model's state ([1, ...] per tensor).
    """

    def __init__(self, model: StreamingModel, key: Hashable) -> None:
        self.key = key
        self._model = model
        self._bound: _Bound | None = None
        self._row = -1
        if model.streams_mode == "interpreter":
            self._bound = _Bound(make_engine(model._source, **model._engine_options), model)
            self._write(model.zero_state())
        else:
            self._row = model._table.add_row()

    def _write(self, state: Mapping[str, np.ndarray]) -> None:
        if self._bound is not None:
            for name, view in self._bound.states.items():
                view[...] = state[name]
        else:
            self._model._write_rows((self._row,), state)

    def step(self, x: Any) -> Output:
        """One step of this stream: x float [features]; returns its output."""
        model = self._model
        if self._bound is not None:
            return model._run(self._bound, x)
        if model.batch_size == 1:
            if model._resident != (self._row,):
                model._load((self._row,))
            return model._run(model._main, x)
        return model._step_rows([self], [x])[0]

    @property
    def state(self) -> State:
        """A copy of this stream's state, by name ([1, ...] per tensor)."""
        if self._bound is not None:
            return {name: view.copy() for name, view in self._bound.states.items()}
        return self._model._read_rows((self._row,))

    @state.setter
    def state(self, value: Mapping[str, np.ndarray]) -> None:
        self._write(self._model._check_state(value, 1))

    def reset(self) -> None:
        """Returns this stream to the zero state."""
        self._write({s.name: _zero(s, (1, *s.shape[1:])) for s in self._model._states})

    def save_state(self, path: str | Path) -> None:
        """Writes this stream's state durably, tied to the model's weights."""
        write_state(path, self.state, self._model.metadata.fingerprint)

    def load_state(self, path: str | Path) -> None:
        """Restores a state written by `save_state` for this model; StateError otherwise."""
        self.state = read_state(path, self._model.metadata.fingerprint)

    def _close(self) -> None:
        model = self._model
        if self._bound is None:
            if model._resident is not None and self._row in model._resident:
                model._evict()
            model._table.remove_row(self._row)
        self._bound = None
