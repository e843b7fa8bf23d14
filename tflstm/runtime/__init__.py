"""Streaming runtime: numpy plus one interpreter backend, never TensorFlow."""

from tflstm.runtime.errors import InputError, ModelError, StateError, TFLSTMError
from tflstm.runtime.loading import read_metadata
from tflstm.runtime.model import StreamingModel
from tflstm.runtime.pool import NonFiniteStateError, StreamPool
from tflstm.runtime.sequence import SequenceModel
from tflstm.runtime.store import MemoryStore, SQLiteStore, StoreError
from tflstm.runtime.streams import Stream

__all__ = [
    "InputError", "MemoryStore", "ModelError", "NonFiniteStateError", "SQLiteStore", "SequenceModel", "StateError",
    "StoreError", "Stream", "StreamPool", "StreamingModel", "TFLSTMError", "read_metadata",
]
