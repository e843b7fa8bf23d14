"""Errors raised by the converter."""


class ConversionError(RuntimeError):
    """The converted model is not what was asked for (e.g. an LSTM did not fuse)."""


class UnsupportedModelError(ValueError):
    """A Keras model tflstm refuses before converting: the message names the layer, why, and what to do."""
