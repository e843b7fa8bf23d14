"""Streaming runtime: numpy plus one interpreter backend, never TensorFlow."""

from tflstm.runtime.errors import InputError, ModelError, StateError, TFLSTMError
from tflstm.runtime.metadata import read_metadata
from tflstm.runtime.model import StreamingModel

__all__ = [
    "InputError", "ModelError", "StateError", "StreamingModel", "TFLSTMError", "read_metadata",
]
