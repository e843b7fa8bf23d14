"""`LSTMStepFunction`: a Flink `KeyedProcessFunction` that steps a tflstm step model per key.

Each key's LSTM state is one bytes value in Flink's keyed `ValueState`: the
model's state tensors in the packed form of `tflstm.runtime.state.PackedLayout`
(raw little-endian, in the metadata's state order, no header: 1,536 B per key
for the digits float32 model, 576 B for its int8 twin), stepped by
`StreamingModel.run_step_packed`, which copies them straight into the
interpreter and back. Flink checkpoints that state with the job, so a job
restored from a checkpoint or savepoint resumes every key exactly where the
checkpoint left it.

The state is declared `Types.PICKLED_BYTE_ARRAY()`: `PRIMITIVE_ARRAY(BYTE)`
state breaks in PyFlink's thread mode. Its name carries the model's weights
fingerprint, so a job restored with a model of other weights starts every key
from the zero state instead of feeding it states the new weights never made.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import numpy as np
from pyflink.common import Time, Types
from pyflink.common.typeinfo import TypeInformation
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import StateTtlConfig, ValueStateDescriptor

from tflstm.runtime import StreamingModel, TFLSTMError
from tflstm.runtime.io import Output
from tflstm.runtime.state import state_nbytes


def last_field(key: Hashable, record: Any) -> Any:
    """The default `preprocess`: the record's last field holds the features."""
    return record[-1]


def key_and_outputs(key: Hashable, record: Any, y: Output) -> tuple:
    """The default `postprocess`: (key, y0, y1, ...) with the outputs as Python floats."""
    values = np.concatenate([np.ravel(v) for v in y.values()]) if isinstance(y, dict) else np.ravel(y)
    return (key, *values.tolist())


def never(key: Hashable, record: Any) -> bool:
    """The default `reset` and `end`: no record starts or ends a sequence."""
    return False


class LSTMStepFunction(KeyedProcessFunction):
    """Steps a tflstm step model once per record, one LSTM state per key, kept by Flink.

    Use it after `key_by`: for each record, the key's state is read from
    Flink's keyed state (the zero state for a new key), the model steps once
    from it with the record's features, the new state is written back and
    `postprocess` turns the output into the record emitted. Records of one key
    must arrive in time order (Flink keeps the order of each key's records
    from one upstream subtask). One `StreamingModel` is loaded per parallel
    subtask in `open()`.

    Args:
        model: path of a batch-1 step model (`.tflite`, read on the client to
            check it and again by every TaskManager, so it must exist there),
            or its bytes (shipped inside the job: no file needed on the cluster).
        preprocess: `(key, record) -> features`, float [depth], one time step.
            Default: the record's last field (`record[-1]`).
        postprocess: `(key, record, y) -> record to emit`, or None to emit
            nothing for this record; `y` is float32 [outputs] (a dict by output
            name for multi-output models). Default: `(key, y0, y1, ...)`, whose
            Flink type `output_type()` gives.
        reset: `(key, record) -> bool`: True when the record starts a new
            sequence for its key; it is stepped from the zero state.
            Default: never.
        end: `(key, record) -> bool`: True when the record ends its key's
            sequence; the key's state is cleared after it (freeing it; the
            key's next record starts from the zero state). Default: never.
        state_ttl_ms: clears a key's state when it was not written for this
            many milliseconds of processing time (Flink state TTL), so idle
            keys cost nothing; their next record starts from the zero state.
            Default: None (kept until `end`).
        backend: the runtime's interpreter backend ("auto", "litert",
            "tflite_runtime", "tf"). Default: "auto".
        num_threads: interpreter threads per subtask. Default: 1.

    Attributes:
        metadata: the model's `ModelMetadata` (read when the function is built).

    Raises:
        tflstm.runtime.ModelError: `model` is not a step model the runtime can run.
        ValueError: a batched model, or a bad `state_ttl_ms`.
        TypeError: a hook that is not callable.
    """

    def __init__(
        self,
        model: str | Path | bytes | bytearray | memoryview,
        *,
        preprocess: Callable[[Hashable, Any], Any] = last_field,
        postprocess: Callable[[Hashable, Any, Output], Any] = key_and_outputs,
        reset: Callable[[Hashable, Any], bool] = never,
        end: Callable[[Hashable, Any], bool] = never,
        state_ttl_ms: int | None = None,
        backend: str = "auto",
        num_threads: int = 1,
    ) -> None:
        super().__init__()
        for name, hook in (("preprocess", preprocess), ("postprocess", postprocess), ("reset", reset), ("end", end)):
            if not callable(hook):
                raise TypeError(f"`{name}` must be callable, got {type(hook).__name__}.")
        if state_ttl_ms is not None and (not isinstance(state_ttl_ms, int) or state_ttl_ms <= 0):
            raise ValueError(f"`state_ttl_ms` must be a positive int or None, got {state_ttl_ms!r}.")
        self._source = bytes(model) if isinstance(model, (bytes, bytearray, memoryview)) else str(model)
        self._options = {"backend": backend, "num_threads": num_threads}
        checked = StreamingModel(self._source, **self._options)  # fails here, on the client, not in the cluster
        if checked.batch_size != 1:
            raise ValueError(
                f"LSTMStepFunction steps one key per invoke and needs a batch-1 step model; "
                f"this one has batch {checked.batch_size}."
            )
        self.metadata = checked.metadata
        self._preprocess, self._postprocess, self._reset, self._end = preprocess, postprocess, reset, end
        self._state_ttl_ms = state_ttl_ms
        self._model: StreamingModel | None = None  # loaded per subtask in open()
        self._state = None

    @property
    def state_name(self) -> str:
        """Name of the keyed `ValueState` holding the packed states: tflstm-<weights fingerprint>."""
        return f"tflstm-{self.metadata.fingerprint[:16]}"

    @property
    def state_nbytes(self) -> int:
        """Bytes of one key's packed state (the value Flink stores per key, before its own overhead)."""
        return state_nbytes(self.metadata.states)

    def output_type(self, key_type: TypeInformation) -> TypeInformation:
        """Flink type of the default records `(key, y0, y1, ...)`: the key, then one FLOAT per output.

        Raises:
            ValueError: a custom `postprocess` was given (declare the type of what it returns).
        """
        if self._postprocess is not key_and_outputs:
            raise ValueError(
                "output_type() describes the default records (key, y0, y1, ...); with a custom "
                "`postprocess`, give `process()` the type of what it returns."
            )
        width = sum(int(np.prod(spec.shape[1:])) for spec in self.metadata.outputs)
        return Types.TUPLE([key_type, *[Types.FLOAT()] * width])

    def open(self, runtime_context: RuntimeContext) -> None:
        self._model = StreamingModel(self._source, **self._options)
        descriptor = ValueStateDescriptor(self.state_name, Types.PICKLED_BYTE_ARRAY())
        if self._state_ttl_ms is not None:
            descriptor.enable_time_to_live(
                StateTtlConfig.new_builder(Time.milliseconds(self._state_ttl_ms))
                .set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)
                .set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                .build()
            )
        self._state = runtime_context.get_state(descriptor)

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context):
        key = ctx.get_current_key()
        try:
            packed = None if self._reset(key, value) else self._state.value()
            y, new_packed = self._model.run_step_packed(self._preprocess(key, value), packed)
        except TFLSTMError as err:
            raise type(err)(f"Key {key!r}: {err}") from err
        if self._end(key, value):
            self._state.clear()
        else:
            self._state.update(new_packed)
        result = self._postprocess(key, value, y)
        if result is not None:
            yield result
