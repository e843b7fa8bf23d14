"""Streaming runtime: numpy plus one interpreter backend, never TensorFlow."""

from tflstm.runtime.errors import InputError, ModelError, StateError, TFLSTMError
from tflstm.runtime.loading import read_metadata
from tflstm.runtime.model import StreamingModel
from tflstm.runtime.sequence import SequenceModel
from tflstm.runtime.streams import Stream

__all__ = [
    "InputError", "ModelError", "SequenceModel", "StateError", "Stream", "StreamingModel", "TFLSTMError",
    "read_metadata",
]
