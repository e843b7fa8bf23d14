"""HTTP server for keyed streams of one model: `serve()`, or `make_app()` for your own ASGI server.

Needs the `serve` extra (`pip install tflstm[serve]`: Starlette and uvicorn).
`python -m tflstm.serve MODEL.tflite` runs it from the command line; see
`tflstm.serve.app` for the endpoints.
"""

from tflstm.serve.app import make_app
from tflstm.serve.server import serve

__all__ = ["make_app", "serve"]
