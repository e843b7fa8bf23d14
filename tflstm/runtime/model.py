"""`StreamingModel`: a fused-LSTM step model run one time step at a time, state carried explicitly.

How state is kept (the hot path never copies state it does not have to): the
fused op holds the state of one stream in the interpreter's variable tensors.
The model's own state and every `stream(key)` live in a lane
(`tflstm.runtime.lanes`): for a batch-1 model, either an interpreter of its own
(no copies when streams alternate; about 128 KiB of private memory each, plus
a mapping of the model file when it was loaded by path) or arrays swapped into
one shared interpreter when the stream steps after another one; for a batched
model, rows of a table stepped `batch_size` at a time by `step_many`. With
`streams="auto"` both kinds coexist: streams of a small model get interpreters
of their own while the estimated memory of those interpreters stays within
`INTERPRETER_BUDGET_BYTES`, and swap lanes beyond, so a few streams never swap
while many streams stay cheap; a larger model's streams swap (its step dwarfs
the copies, and many interpreters cost cache misses).

Threads: a `StreamingModel` and its streams may be used from any thread and give
the results a serial run would. Streams with an interpreter of their own never
wait for one another's locks; streams that share an interpreter (the model's own
state, `streams="swap"`, rows of a batched model, `run_step`) take turns on it.
Both backends release the GIL while they invoke (measured with ai-edge-litert 2.3
and tflite-runtime 2.14: a pure-Python thread beside an invoking thread ran as fast
as beside a GIL-releasing numpy matmul, and faster than beside a Python loop), so
streams with interpreters of their own can invoke at the same time on separate
cores; the Python around each invoke still takes turns on the GIL.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tflstm.format import ModelMetadata
from tflstm.runtime.backend import Engine, make_engine
from tflstm.runtime.errors import ModelError
from tflstm.runtime.executor import Executor, hot_path_name
from tflstm.runtime.io import Inputs, Output, Outputs
from tflstm.runtime.lanes import OwnInterpreterLane, RowsLane, SwapLane, step_rows
from tflstm.runtime.loading import load_model
from tflstm.runtime.state import PackedLayout, State, StateTable, check_state, zero_state
from tflstm.runtime.streams import Lane, Stream
from tflstm.runtime.summary import ModelSummary

INTERPRETER_PER_STREAM_MAX_BYTES = 256 * 1024
"""`streams="auto"` gives streams interpreters of their own only for models up to this size."""
INTERPRETER_BYTES = 128 * 1024
"""Private memory of one more interpreter, without the default delegates (measured 100-120 KiB on
ai-edge-litert 2.3 for models of 16-477 KiB: arenas and bookkeeping; the weights are shared)."""
INTERPRETER_BUDGET_BYTES = 32 * 1024 * 1024
"""`streams="auto"` gives streams interpreters of their own while their estimated memory stays within this."""
STREAM_MODES = ("auto", "interpreter", "swap")


class StreamingModel:
    """A fused-LSTM step model run one time step at a time, with its state carried.

    Works on step models written by tflstm (`streaming=True`), and on other
    fused-LSTM `.tflite` files (e.g. a tf-keras LSTM converted by the stock
    TFLiteConverter), whose state tensors it finds in the flatbuffer. A chunk
    model (converted with `steps_per_call=k`) takes k time steps per call,
    `step(x)` with x [k, features], and returns that chunk's outputs. The file is
    verified before an interpreter sees it (structure, checksum, weights
    fingerprint, metadata against the flatbuffer). Safe to use from many threads
    (see the module docstring).

    Args:
        model: path to a `.tflite` file, or its bytes.
        num_threads: interpreter threads. Default: 1.
        backend: "auto" (ai-edge-litert, then tflite-runtime, then TensorFlow),
            "litert", "tflite_runtime" or "tf". Default: "auto".
        streams: how `stream(key)` streams of a batch-1 model keep their state:
            "interpreter" (one interpreter each: no swaps), "swap" (share one
            interpreter, swapping state in and out) or "auto": for models up to
            256 KiB, interpreters of their own while their estimated memory
            (`INTERPRETER_BYTES` each, plus the model file's size when it was
            loaded by path, which every interpreter maps, plus the file's size
            again with `experimental_xnnpack`, which repacks the weights) stays
            within `INTERPRETER_BUDGET_BYTES` (32 MiB: about 200 streams of a
            36 KiB model), swap beyond and for larger models. Default: "auto".
        preprocess: optional stateless callable applied to every input before
            normalization, e.g. feature extraction. Default: None.
        postprocess: optional stateless callable applied to every output.
            Default: None.
        experimental_xnnpack: apply the XNNPACK delegate (speeds up dense layers on
            some CPUs, costs memory per interpreter). Default: False.
        allow_nonfinite: let NaN and infinite inputs through; by default they are
            refused with `InputError` before they can poison the state. Default: False.

    Raises:
        ModelError: the file is damaged, not a fused-LSTM step model, or refused
            by the interpreter.
    """

    def __init__(
        self,
        model: str | Path | bytes,
        *,
        num_threads: int = 1,
        backend: str = "auto",
        streams: str = "auto",
        preprocess: Callable[[Any], Any] | None = None,
        postprocess: Callable[[Output], Any] | None = None,
        experimental_xnnpack: bool = False,
        allow_nonfinite: bool = False,
    ) -> None:
        if streams not in STREAM_MODES:
            raise ValueError(f"`streams` must be one of {STREAM_MODES}, got {streams!r}.")
        self._loaded = loaded = load_model(model)
        self.metadata: ModelMetadata = loaded.metadata
        if self.metadata.kind != "step":
            raise ModelError(
                f"Expected a step model (converted with streaming=True), got a {self.metadata.kind!r} model: "
                "run sequence models with SequenceModel.run_sequence."
            )
        self.summary = ModelSummary.of(loaded.view, self.metadata, model if isinstance(model, (str, Path)) else None)
        """What the model is (`tflstm info` prints it); `repr()` says it in one line."""
        self._engine_options = {"num_threads": num_threads, "backend": backend, "xnnpack": experimental_xnnpack}
        self.hot_path = hot_path_name()
        """"C" or "Python": which hot path this model's steps run (see `tflstm.runtime.executor.NATIVE`)."""
        engine = self._new_engine()
        self.backend = engine.backend
        self._inputs = Inputs(self.metadata.inputs[0], self.metadata.normalization, preprocess, allow_nonfinite)
        self._outputs = Outputs(self.metadata.outputs, postprocess)
        batch = self.batch_size
        if batch > 1 and self._inputs.spec.shape != (1, batch, self.input_depth):
            raise ModelError(
                f"A batched step model must take time-major input [1, {batch}, depth], "
                f"got {list(self._inputs.spec.shape)}."
            )
        self._main = Executor(engine, self._inputs, self._outputs, self.metadata.states)
        with self._main.lock:  # one step from the zero state: a model that cannot run fails here, not later
            self._main.run_prepared(np.zeros(self._inputs.spec.shape, self._inputs.spec.dtype), ())
            engine.reset_variables()
        self._table = StateTable(self.metadata.states, batch) if batch > 1 else None
        own: Lane = RowsLane(self._main, self._table, tuple(range(batch))) if self._table else SwapLane(self._main)
        self._own = Stream(None, own, self.metadata.states, self.metadata.fingerprint)
        self.step = own.step  # bound once: the hot path
        self.state_layout = PackedLayout(self.metadata.states, batch)
        """The packed form of a state of this model (`run_step_packed`, state stores)."""
        if sys.byteorder == "little":  # the packed form's byte order: copied without conversion
            self.run_step_packed = self._main.bind_packed_step(self.state_layout)
        self.allow_nonfinite = allow_nonfinite
        """Whether NaN and infinite inputs are let through (see `allow_nonfinite` above)."""
        if streams == "auto" and batch != 1:
            streams = "swap"
        if streams == "interpreter" and batch != 1:
            raise ValueError(
                f'`streams="interpreter"` needs a batch-1 model; this one has batch {batch}: '
                "its streams are rows of the batch (use step_many)."
            )
        self.streams_mode = streams
        mapped = len(loaded.content) if isinstance(loaded.source, str) else 0
        self._interpreter_bytes = INTERPRETER_BYTES + mapped + (len(loaded.content) if experimental_xnnpack else 0)
        self._streams: dict[Hashable, Stream] = {}
        self._lanes: dict[Hashable, Lane] = {}
        self._registry = threading.Lock()  # guards creating and removing streams and counting interpreters
        self.interpreter_streams = 0
        """How many streams have an interpreter of their own."""

    def __repr__(self) -> str:
        return (
            f"StreamingModel({self.summary.one_line()}, backend {self.backend}, streams {self.streams_mode}, "
            f"hot path {self.hot_path})"
        )

    # ---- properties ------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Rows of the model's batch: streams stepped together per invoke."""
        return self.metadata.batch_size

    @property
    def input_depth(self) -> int:
        """Features per time step."""
        return self.metadata.inputs[0].shape[-1]

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the state tensors (`<layer>/h`, `<layer>/c`)."""
        return tuple(s.name for s in self.metadata.states)

    # ---- the model's own state --------------------------------------------------------
    def zero_state(self) -> State:
        """The initial state of the whole batch, by name (zero, or the quantized zero)."""
        return zero_state(self.metadata.states, self.batch_size)

    def run_step(self, x: Any, state: Mapping[str, np.ndarray]) -> tuple[Output, State]:
        """One step from `state`; leaves every stream's state untouched.

        Args:
            x: float [features] (batch-1 models) or [batch, features], one time step.
            state: the state to start from, by name, shapes as in `zero_state()`.

        Returns:
            (y, new_state): y is float32 [outputs] for a 1-D `x`, else
            [batch, outputs]; new_state maps the same names to new arrays.
        """
        checked = check_state(self.metadata.states, state, self.batch_size)
        with self._main.lock:
            self._main.write_state(checked)
            y = self._main.run(x)
            return y, self._main.read_state(self.batch_size)

    def run_step_packed(self, x: Any, packed: bytes | None) -> tuple[Output, bytes]:
        """`run_step` on packed states: the form key-value state stores keep (Flink's keyed state...).

        Faster than `run_step` with `unpack_state`/`pack_state` around it: on
        little-endian hosts the bytes are copied straight into the interpreter's
        state buffers and back (this method is then replaced per instance by
        that bound form).

        Args:
            x: as for `run_step`.
            packed: the state to start from, in `state_layout`'s packed form
                (`pack_state`: raw little-endian bytes, the state tensors in
                metadata order); None: the zero state.

        Returns:
            (y, new packed state).

        Raises:
            InputError: `x` is refused. StateError: `packed` is not a packed state
            of this model (wrong type or size) or holds NaN/Inf.
        """
        state = self.zero_state() if packed is None else self.state_layout.unpack(packed)
        y, new_state = self.run_step(x, state)
        return y, self.state_layout.pack(new_state)

    def step(self, x: Any) -> Output:  # replaced per instance by the own lane's bound step
        """One step of the model's own state, which advances; see `run_step`."""
        return self._own.step(x)

    @property
    def state(self) -> State:
        """A copy of the model's own state, by name."""
        return self._own.state

    @state.setter
    def state(self, value: Mapping[str, np.ndarray]) -> None:
        self._own.state = value

    def reset(self) -> None:
        """Returns the model's own state to the zero state."""
        self._own.reset()

    def save_state(self, path: str | Path) -> None:
        """Writes the model's own state durably, tied to this model's weights."""
        self._own.save_state(path)

    def load_state(self, path: str | Path) -> None:
        """Restores a state written by `save_state` for this model; StateError otherwise."""
        self._own.load_state(path)

    # ---- many streams -----------------------------------------------------------------
    def _new_engine(self) -> Engine:
        """An interpreter of the verified model (confirming a model file did not change since)."""
        engine = make_engine(self._loaded.source, **self._engine_options)
        self._loaded.check_unchanged()
        return engine

    def _new_lane(self) -> Lane:
        """A lane for a new stream (registry lock held): rows, an own interpreter (see `streams`), or swap."""
        if self._table is not None:
            with self._main.lock:
                row = self._table.add_row()
            return RowsLane(self._main, self._table, (row,))
        small = len(self._loaded.content) <= INTERPRETER_PER_STREAM_MAX_BYTES
        within_budget = (self.interpreter_streams + 1) * self._interpreter_bytes <= INTERPRETER_BUDGET_BYTES
        if self.streams_mode == "interpreter" or (self.streams_mode == "auto" and small and within_budget):
            lane = OwnInterpreterLane(Executor(self._new_engine(), self._inputs, self._outputs, self.metadata.states))
            self.interpreter_streams += 1
            return lane
        return SwapLane(self._main)

    def stream(self, key: Hashable) -> Stream:
        """The stream named `key`, created at the zero state on first use."""
        found = self._streams.get(key)
        if found is None:
            with self._registry:
                found = self._streams.get(key)
                if found is None:
                    lane = self._lanes[key] = self._new_lane()
                    found = self._streams[key] = Stream(key, lane, self.metadata.states, self.metadata.fingerprint)
        return found

    def remove_stream(self, key: Hashable) -> None:
        """Forgets stream `key` and frees what it held; KeyError if there is none."""
        with self._registry:
            stream = self._streams.pop(key)
            lane = self._lanes.pop(key)
            self.interpreter_streams -= isinstance(lane, OwnInterpreterLane)
        stream.close()

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._streams)

    def __len__(self) -> int:
        return len(self._streams)

    def step_many(self, inputs: Mapping[Hashable, Any]) -> dict[Hashable, Output]:
        """Steps several streams, `batch_size` of them per invoke; all or nothing.

        Every input is checked before any stream moves or is created: when one is
        refused (`InputError`), no stream has advanced and no new stream exists.

        Args:
            inputs: stream key -> float [features], one time step each.

        Returns:
            stream key -> output, as each stream's own `step` would return.
        """
        keys = list(inputs)
        if self.batch_size == 1:
            prepared = [self._inputs.prepare(inputs[key]) for key in keys]
            lanes = [self._lane(key) for key in keys]
            return {key: lane.step_prepared(*p) for key, lane, p in zip(keys, lanes, prepared)}
        chunks = [keys[start : start + self.batch_size] for start in range(0, len(keys), self.batch_size)]
        rows = [self._inputs.prepare_rows([inputs[key] for key in chunk]) for chunk in chunks]
        outputs: dict[Hashable, Output] = {}
        for chunk, chunk_rows in zip(chunks, rows):
            outputs.update(zip(chunk, step_rows([self._lane(key) for key in chunk], chunk_rows)))
        return outputs

    def _lane(self, key: Hashable) -> Lane:
        self.stream(key)
        return self._lanes[key]
