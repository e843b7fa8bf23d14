"""Errors raised by the converter."""


class ConversionError(RuntimeError):
    """The converted model is not what was asked for (e.g. an LSTM did not fuse)."""
