"""tflstm's own methods, timed through the public API only (runtime-only: numpy + a backend).

Each `Method` makes one call per `step(i)`: it takes the input of call i from its
sequences and returns the output; `reset()` returns to the zero state. A call
is one time step, or `steps_per_call` of them for a chunk model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tflstm.format import read_metadata
from tflstm.runtime import StreamingModel
from tflstm.runtime.backend import interpreter_module


class BareInvoke:
    """The floor: set input, invoke, get output on the step model, state left inside.

    Uses the public interpreter API with the same op resolver as tflstm (no
    default delegates), so the ratio to it is tflstm's own overhead.
    """

    name = "bare_invoke"

    def __init__(self, path: Path, x: np.ndarray, backend: str = "auto", threads: int = 1) -> None:
        module, self.backend = interpreter_module(backend)
        meta = read_metadata(path.read_bytes())
        self._interpreter = module.Interpreter(
            model_path=str(path), num_threads=threads,
            experimental_op_resolver_type=module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        self._interpreter.allocate_tensors()
        self._in, self._out = meta.inputs[0].tensor_index, meta.outputs[0].tensor_index
        k = meta.time_steps  # time steps per call: 1, or k for a chunk model
        self._x = np.ascontiguousarray(x[: len(x) // k * k].reshape(-1, *meta.inputs[0].shape))

    def reset(self) -> None:
        self._interpreter.reset_all_variables()

    def step(self, i: int) -> np.ndarray:
        interpreter = self._interpreter
        interpreter.set_tensor(self._in, self._x[i % len(self._x)])
        interpreter.invoke()
        return interpreter.get_tensor(self._out)


class TflstmStep:
    """`StreamingModel.step`: one stream, state carried by tflstm (k time steps per call for a chunk model;
    inputs checked for NaN/Inf unless `check_inputs` is False)."""

    def __init__(
        self, path: Path, x: np.ndarray, backend: str = "auto", threads: int = 1, *, check_inputs: bool = True
    ) -> None:
        self.model = StreamingModel(path, backend=backend, num_threads=threads, allow_nonfinite=not check_inputs)
        self.steps_per_call = k = self.model.metadata.time_steps
        self.name = ("tflstm_step" if k == 1 else f"tflstm_chunk_{k}") + ("" if check_inputs else "_unchecked")
        self._x = x if k == 1 else x[: len(x) // k * k].reshape(-1, k, x.shape[-1])

    def reset(self) -> None:
        self.model.reset()

    def step(self, i: int) -> np.ndarray:
        return self.model.step(self._x[i % len(self._x)])


class TflstmStreams:
    """N streams of one `StreamingModel`, stepped round-robin (one stream-step per call).

    `xs` is [streams, steps, depth]; call i steps stream i % N with its sample i // N.
    """

    def __init__(self, path: Path, xs: np.ndarray, backend: str = "auto", threads: int = 1, streams: str = "auto") -> None:
        self.model = StreamingModel(path, backend=backend, num_threads=threads, streams=streams)
        self.name = f"tflstm_streams_{len(xs)}"
        self._streams = [self.model.stream(k) for k in range(len(xs))]
        self.count = len(self._streams)
        self._xs = xs

    def reset(self) -> None:
        for stream in self._streams:
            stream.reset()

    def step(self, i: int) -> np.ndarray:
        n = len(self._streams)
        return self._streams[i % n].step(self._xs[i % n, (i // n) % self._xs.shape[1]])


class TflstmStepMany:
    """`step_many` on a model converted with batch N: one call steps all N streams."""

    def __init__(self, path: Path, xs: np.ndarray, backend: str = "auto", threads: int = 1) -> None:
        self.model = StreamingModel(path, backend=backend, num_threads=threads)
        self.streams = self.model.batch_size
        self.name = f"tflstm_step_many_{self.streams}"
        if len(xs) < self.streams:
            xs = np.resize(xs, (self.streams, *xs.shape[1:]))
        self._xs = xs[: self.streams]
        self._keys = list(range(self.streams))
        for key in self._keys:
            self.model.stream(key)

    def reset(self) -> None:
        for key in self._keys:
            self.model.stream(key).reset()

    def step(self, i: int) -> dict:
        t = i % self._xs.shape[1]
        return self.model.step_many({key: self._xs[key, t] for key in self._keys})
