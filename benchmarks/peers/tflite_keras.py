"""TFLite models converted from tf-keras (Keras 2) LSTM models, run with ai-edge-litert.

Two peers:

* `tfkeras_unfused_state_io`: a one-step model with the state as inputs and
  outputs (`initial_state=[h, c]`, `return_state=True`). The converter cannot
  fuse an LSTM with state I/O, so it emits a `WHILE` loop of unfused ops; the
  caller carries the state.
* `sliding_window`: a plain sequence model (fused to
  `UNIDIRECTIONAL_SEQUENCE_LSTM`) re-run over the last W samples for every new
  sample.

Building (`build_*_tflite`) needs TensorFlow and tf-keras; running the
`TFLite*` classes on `.tflite` bytes needs only a TFLite runtime
(ai-edge-litert, else tflite-runtime), so a device runner can load prebuilt
models.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.peers import _deps, keras_models
from benchmarks.peers.weights import Weights, dims

UNFUSED_NAME = "tfkeras_unfused_state_io"
WINDOW_NAME = "sliding_window"


def _convert(weights: Weights, method: str, threads: int, build: Any, *args: Any) -> bytes:
    """Builds a tf-keras model with `build(tf_keras, weights, *args)` and converts it."""
    dims(weights)
    tf = _deps.tensorflow(method, threads)
    tf_keras = _deps.require("tf_keras", method)
    model = build(tf_keras, weights, *args)
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def build_unfused_state_io_tflite(weights: Weights, *, threads: int = 1) -> bytes:
    """The state-I/O step model (`keras_models.state_io_model`) as `.tflite` bytes."""
    return _convert(weights, UNFUSED_NAME, threads, keras_models.state_io_model)


def build_window_tflite(weights: Weights, window: int, *, threads: int = 1) -> bytes:
    """The sequence model over `window` steps (`keras_models.window_model`) as `.tflite` bytes."""
    if not isinstance(window, int) or window <= 0:
        raise ValueError(f"`window` must be a positive int, got {window!r}.")
    return _convert(weights, WINDOW_NAME, threads, keras_models.window_model, window)


class _TFLiteMethod:
    """An interpreter on `.tflite` bytes, tensors allocated, and its op list."""

    name = "tflite"

    def __init__(self, model_content: bytes, threads: int = 1) -> None:
        interpreter_class = _deps.tflite_interpreter(self.name)
        self.interpreter = interpreter_class(model_content=model_content, num_threads=threads)
        self.interpreter.allocate_tensors()
        self.threads = threads
        # Op names of the main subgraph as converted (a WHILE body's ops are not listed,
        # nor the DELEGATE node XNNPACK adds); the interpreter has no public API for it.
        self.ops: tuple[str, ...] = tuple(
            op["op_name"]
            for op in self.interpreter._get_ops_details()  # noqa: SLF001
            if op["op_name"] != "DELEGATE"
        )


class TFLiteStateIOStep(_TFLiteMethod):
    """Streams with a one-step model whose per-layer h and c are model inputs and outputs.

    Every step sets x and the carried states, invokes, and reads the output and
    the new states, which become the next step's inputs. The model's signature
    must name the inputs `x`, `h_<k>`, `c_<k>` and the outputs `head`,
    `new_h_<k>`, `new_c_<k>` (as `keras_models.state_io_model` does).
    """

    name = UNFUSED_NAME

    def __init__(self, model_content: bytes, threads: int = 1) -> None:
        super().__init__(model_content, threads)
        runner = self.interpreter.get_signature_runner()
        inputs = {key: d["index"] for key, d in runner.get_input_details().items()}
        outputs = {key: d["index"] for key, d in runner.get_output_details().items()}
        del runner  # it holds views of the interpreter's buffers
        layers = sum(key.startswith("h_") for key in inputs)
        self._x = inputs["x"]
        self._x_shape = tuple(self.interpreter.get_tensor(self._x).shape)
        self._y = outputs["head"]
        # (input index, output index, current value) per state tensor.
        self._states: list[tuple[int, int, np.ndarray]] = []
        for k in range(layers):
            for kind in keras_models.STATE_KINDS:
                key = keras_models.state_name(k, kind)
                index = inputs[key]
                shape = self.interpreter.get_tensor(index).shape
                self._states.append((index, outputs[f"new_{key}"], np.zeros(shape, np.float32)))
        self.reset()

    def reset(self) -> None:
        """Zeroes the carried states."""
        self._states = [(i, o, np.zeros_like(v)) for i, o, v in self._states]

    def step(self, x: np.ndarray) -> np.ndarray:
        """x float32 [depth] -> head output float32 [outputs]."""
        interpreter = self.interpreter
        interpreter.set_tensor(self._x, x.reshape(self._x_shape))
        for index, _, value in self._states:
            interpreter.set_tensor(index, value)
        interpreter.invoke()
        self._states = [(i, o, interpreter.get_tensor(o)) for i, o, _ in self._states]
        return interpreter.get_tensor(self._y).reshape(-1)


class TFLiteSlidingWindow(_TFLiteMethod):
    """Re-runs a sequence model over the last W samples for every new sample.

    The window starts as zeros and shifts by one sample per step. Before each
    invoke the fused op's h/c variable tensors are reset to zero
    (`reset_all_variables()`): the fused op keeps its state across invokes, so
    without that every window would continue from the previous one.

    What it computes differs from streaming by construction:

    * before W samples the window holds leading zeros, which are not "no input"
      (they move the state through the biases), so the output differs;
    * at exactly W samples since `reset()` the window is the whole stream and
      the output equals streaming (up to float rounding): `matches_stream_after`
      is that W;
    * after that each output is that of a stream restarted W samples ago: the
      model forgets everything older, and the output again differs from the
      unbounded stream (by how much depends on the model's memory).
    """

    name = WINDOW_NAME

    def __init__(self, model_content: bytes, threads: int = 1) -> None:
        super().__init__(model_content, threads)
        (inp,) = self.interpreter.get_input_details()
        (out,) = self.interpreter.get_output_details()
        self._x, self._y = inp["index"], out["index"]
        self._buffer = np.zeros(inp["shape"], np.float32)
        self.window = int(inp["shape"][1])
        self.matches_stream_after = self.window
        self.name = f"{WINDOW_NAME}_{self.window}"

    def reset(self) -> None:
        """Empties the window (zeros)."""
        self._buffer[:] = 0.0

    def step(self, x: np.ndarray) -> np.ndarray:
        """x float32 [depth] -> head output float32 [outputs] over the last W samples."""
        window = self._buffer[0]
        window[:-1] = window[1:]  # NumPy copies overlapping ranges correctly
        window[-1] = x
        interpreter = self.interpreter
        interpreter.reset_all_variables()
        interpreter.set_tensor(self._x, self._buffer)
        interpreter.invoke()
        return interpreter.get_tensor(self._y).reshape(-1)


def make_tfkeras_unfused_state_io(weights: Weights, *, threads: int = 1) -> TFLiteStateIOStep:
    """tf-keras LSTM with `initial_state`/`return_state`, converted (WHILE loop), state carried."""
    return TFLiteStateIOStep(build_unfused_state_io_tflite(weights, threads=threads), threads)


def make_sliding_window(weights: Weights, *, threads: int = 1, window: int = 7) -> TFLiteSlidingWindow:
    """Fused tf-keras sequence model re-run on the last `window` samples per step."""
    return TFLiteSlidingWindow(build_window_tflite(weights, window, threads=threads), threads)
