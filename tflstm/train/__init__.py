"""Training API (TensorFlow graph mode): the cell, the loop and the model builder.

`TFLiteLSTMCell`, `LSTMStateTuple` and `dynamic_rnn` import TensorFlow on first
use, so the TensorFlow-free modules here (`spec`, `data`, `ts_file`) can be
imported to check data and flags before TensorFlow is loaded.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TFLiteLSTMCell": "tflstm.train.cell",
    "LSTMStateTuple": "tflstm.train.cell",
    "dynamic_rnn": "tflstm.train.rnn",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tflstm.train' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
