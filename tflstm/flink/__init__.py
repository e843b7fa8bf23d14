"""Apache Flink: a tflstm streaming model stepped per key, its LSTM state in Flink's keyed state.

Needs the `flink` extra (`pip install tflstm[flink]`: PyFlink, which needs a
Java 11 or 17 runtime, and ai-edge-litert); `tflstm.runtime` never imports it.

    from pyflink.common import Types
    from tflstm.flink import LSTMStepFunction, local_environment

    env = local_environment("build/flink", checkpoint_interval_ms=1000)
    step = LSTMStepFunction("digits_step_float32.tflite")        # records: (key, ..., features)
    rows.key_by(lambda row: row[0], key_type=Types.STRING()) \\
        .process(step, output_type=step.output_type(Types.STRING()))  # (key, y0, ..., y9)

`LSTMStepFunction` is the operator; `local_environment` a local mini-cluster
that writes its logs, temporary files and checkpoints under one folder.
"""

from __future__ import annotations

try:
    import pyflink  # noqa: F401  (checked here so the error names the extra)
except ImportError as err:
    raise ImportError(
        "tflstm.flink needs PyFlink: pip install 'tflstm[flink]' (apache-flink 2.3, which also needs Java 11 or 17)."
    ) from err

from tflstm.flink.environment import local_environment
from tflstm.flink.step_function import LSTMStepFunction

__all__ = ["LSTMStepFunction", "local_environment"]
