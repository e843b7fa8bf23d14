"""Errors of the streaming runtime. Each is also a ValueError."""


class TFLSTMError(ValueError):
    """Base class of tflstm runtime errors."""


class ModelError(TFLSTMError):
    """The model file is not a usable tflstm streaming model."""


class InputError(TFLSTMError):
    """An input has the wrong shape or dtype."""


class StateError(TFLSTMError):
    """A state mapping or state file does not fit the model."""
