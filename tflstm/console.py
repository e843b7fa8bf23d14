"""Console output of tflstm's command-line tools: our progress lines, TensorFlow quiet."""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("tflstm")


def setup_logging() -> None:
    """Progress lines on stdout; TensorFlow's C++ and Python logs down to errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from absl import logging as absl_logging

    tf.get_logger().setLevel("ERROR")
    absl_logging.set_verbosity(absl_logging.WARNING)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
