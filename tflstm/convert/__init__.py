"""Conversion (needs TensorFlow): graphs with tflstm layers, or Keras models -> fused-LSTM `.tflite`."""

from tflstm.convert.errors import ConversionError, UnsupportedModelError
from tflstm.convert.keras import from_keras
from tflstm.convert.session import from_session

__all__ = ["ConversionError", "UnsupportedModelError", "from_keras", "from_session"]
