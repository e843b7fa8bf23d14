"""HTTP server for keyed streams of one model: `serve()`, or `make_app()` for your own ASGI server.

Needs the `serve` extra (`pip install tflstm[serve]`: Starlette and uvicorn), which
`serve` and `make_app` import on first use, so `tflstm serve --help` works without it.
`tflstm serve MODEL.tflite` runs it from the command line; see `tflstm.serve.app`
for the endpoints.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"make_app": "tflstm.serve.app", "serve": "tflstm.serve.server"}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tflstm.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
