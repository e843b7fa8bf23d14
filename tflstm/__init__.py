"""tflstm: LSTM models from TensorFlow training to streaming TFLite inference.

`TFLiteLSTMCell`, `dynamic_rnn` and `convert` import TensorFlow on first use, so
`import tflstm.runtime` on a device never pulls TensorFlow in.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "TFLiteLSTMCell": ("tflstm.train.cell", "TFLiteLSTMCell"),
    "LSTMStateTuple": ("tflstm.train.cell", "LSTMStateTuple"),
    "dynamic_rnn": ("tflstm.train.rnn", "dynamic_rnn"),
    "convert": ("tflstm.convert", None),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tflstm' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)
