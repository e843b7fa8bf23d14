"""`SequenceModel`: a fused-LSTM sequence model (kind "sequence") run a whole window per invoke.

A fused LSTM keeps its state in the interpreter's variable tensors across
invokes, also in a sequence model: `run_sequence` resets it first unless told
not to, so windows fed one after another with `reset=False` continue the same
sequence (Keras `stateful=True` semantics).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tflstm.format import ModelMetadata
from tflstm.runtime.backend import make_engine
from tflstm.runtime.errors import ModelError
from tflstm.runtime.executor import Executor
from tflstm.runtime.io import Inputs, Output, Outputs
from tflstm.runtime.loading import load_model
from tflstm.runtime.state import zero_state


class SequenceModel:
    """A sequence model converted by tflstm (`streaming=False`), without TensorFlow.

    The file is verified as `StreamingModel` verifies it; calls from several
    threads take turns on the interpreter.

    Args:
        model: path to a `.tflite` file, or its bytes.
        num_threads: interpreter threads. Default: 1.
        backend: "auto", "litert", "tflite_runtime" or "tf". Default: "auto".
        allow_nonfinite: let NaN and infinite inputs through. Default: False
            (refused with `InputError`).
    """

    def __init__(
        self, model: str | Path | bytes, *, num_threads: int = 1, backend: str = "auto", allow_nonfinite: bool = False
    ) -> None:
        loaded = load_model(model)
        self.metadata: ModelMetadata = loaded.metadata
        if self.metadata.kind != "sequence":
            raise ModelError(
                f"Expected a sequence model (converted with streaming=False), got a {self.metadata.kind!r} model: "
                "run step models with StreamingModel."
            )
        engine = make_engine(loaded.source, num_threads=num_threads, backend=backend)
        loaded.check_unchanged()
        self.backend = engine.backend
        inputs = Inputs(self.metadata.inputs[0], self.metadata.normalization, None, allow_nonfinite)
        self._executor = Executor(engine, inputs, Outputs(self.metadata.outputs, None), self.metadata.states)
        self.reset()

    @property
    def time_steps(self) -> int:
        """Time steps per invoke: the length of the window the model was converted for."""
        return self.metadata.time_steps

    @property
    def batch_size(self) -> int:
        """Sequences per invoke."""
        return self.metadata.batch_size

    def reset(self) -> None:
        """Returns the LSTM state to the zero state."""
        with self._executor.lock:
            self._executor.write_state(zero_state(self.metadata.states, self.batch_size))

    def run_sequence(self, x: Any, *, reset: bool = True) -> Output:
        """Runs one window.

        Args:
            x: float [time_steps, features] (batch-1 models) or the input
                tensor's [time_steps, batch, features].
            reset: start from the zero state. False continues from the state
                the previous call left (the next window of the same sequence).
                Default: True.

        Returns:
            The outputs, time-major as converted ([time_steps, batch, d] or
            [1, batch, d]) without the batch axis for a 2-D `x`; a dict by
            output name for multi-output models.
        """
        with self._executor.lock:
            if reset:
                self._executor.write_state(zero_state(self.metadata.states, self.batch_size))
            return self._executor.run(x)
