"""Conversion (needs TensorFlow): graphs with tflstm layers -> fused-LSTM `.tflite`."""

from tflstm.convert.errors import ConversionError
from tflstm.convert.session import from_session

__all__ = ["ConversionError", "from_session"]
