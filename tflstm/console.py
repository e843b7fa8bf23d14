"""Console behaviour shared by tflstm's command-line tools.

- Our progress lines go to stdout through the `tflstm` logger.
- TensorFlow stays quiet unless asked (`--verbose`): its C++ logs are switched
  off before it is imported, and what it still writes to the process's stderr
  (import-time notices, converter diagnostics) is discarded while a command runs.
- A user's mistake is one `error: ...` line on stderr and exit code 2, never a
  traceback (`USER_ERRORS`, `error_line`).

No TensorFlow or absl here: the runtime-only install uses it too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator

log = logging.getLogger("tflstm")

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A mistake the user can fix (a bad flag value, a missing file): reported as one line."""


USER_ERRORS: tuple[type[BaseException], ...] = (UserError, ValueError, OSError, ImportError)
"""What a command reports as `error: ...` with exit code 2. The runtime's `TFLSTMError`,
`tflstm.train.data.DataError` and argument checks are `ValueError`s; missing files and
unwritable paths `OSError`s; a missing backend or extra an `ImportError` naming the pip command."""


def error_line(err: BaseException | str) -> str:
    """`error: <message>` on one line (the message's own line breaks become spaces)."""
    message = " ".join(str(err).split()) or type(err).__name__
    return f"error: {message}"


def setup_logging() -> None:
    """Sends the `tflstm` logger's progress lines to stdout, as bare messages."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


@contextlib.contextmanager
def quiet_tensorflow(verbose: bool = False) -> Iterator[None]:
    """Runs the body with TensorFlow's logs silenced, unless `verbose`; enter before importing it.

    Sets `TF_CPP_MIN_LOG_LEVEL=3` and the `tensorflow` Python logger to errors,
    and points file descriptor 2 at /dev/null for the body: TensorFlow writes
    some lines there whatever the log level (oneDNN and CUDA notices at import,
    the converter's grappler and quantizer diagnostics). Exceptions still reach
    the caller, which reports them after the body, with stderr restored.
    """
    setup_logging()
    if verbose:
        yield
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    sys.stderr.flush()
    saved = os.dup(2)
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 2)
    os.close(sink)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def epoch_logger(epochs: int, metric: str, every: int = 1) -> Callable[[int, float, float], None]:
    """An `on_epoch` callback for `builder.train` logging epoch, loss, `metric` and seconds.

    Args:
        epochs: the number of epochs (shown as `epoch k/epochs`).
        metric: name of the training metric (e.g. "train accuracy").
        every: log every `every`-th epoch and the last one. Default: 1.
    """
    last = [time.monotonic()]

    def on_epoch(epoch: int, loss: float, value: float) -> None:
        now = time.monotonic()
        if epoch % every == 0 or epoch == epochs:
            width = len(str(epochs))
            log.info("epoch %*d/%d  loss %.4f  %s %.4f  %.2f s", width, epoch, epochs, loss, metric, value, now - last[0])
        last[0] = now

    return on_epoch
