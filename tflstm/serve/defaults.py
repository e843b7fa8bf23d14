"""The server's defaults, importable without the server's libraries (for `tflstm serve --help`)."""

DEFAULT_PORT = 8501
"""TensorFlow Serving's REST port, for people coming from it."""
MAX_BODY_BYTES = 1 << 20
"""Largest request body accepted (413 beyond)."""
