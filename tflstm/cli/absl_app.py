"""Runs an absl app (`converters/*`, `benchmarks.run`) the way every tflstm command behaves.

absl's own `app.run` exits 1 on `--help` and prints a usage block or a traceback
for mistakes; `run` here exits 0 on help, turns a bad flag or a user error
(`tflstm.console.USER_ERRORS`) into one `error: ...` line with exit code 2,
keeps TensorFlow quiet and adds `--verbose` (TensorFlow's logs and tracebacks).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from absl import app, flags

from tflstm.console import EXIT_INTERRUPTED, EXIT_USER_ERROR, USER_ERRORS, error_line, quiet_tensorflow

_VERBOSE = flags.DEFINE_bool("verbose", False, "Show TensorFlow's logs, and tracebacks of errors.")

HELP_ARGUMENTS = {"-h", "-?", "--help", "--helpshort", "--helpfull"}


def _parse(argv: list[str]) -> list[str]:
    if HELP_ARGUMENTS & set(argv[1:]):
        app.usage(shorthelp="--helpfull" not in argv, writeto_stdout=True)
        sys.exit(0)
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        print(error_line(err) + " (see --help)", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def run(main: Callable[[list[str]], int | None]) -> None:
    """Parses the flags and runs `main(argv)` with TensorFlow quiet; exits with its return code."""

    def guarded(argv: list[str]) -> int | None:
        try:
            with quiet_tensorflow(_VERBOSE.value):
                return main(argv)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except USER_ERRORS as err:
            if _VERBOSE.value:
                raise
            print(error_line(err), file=sys.stderr)
            return EXIT_USER_ERROR

    app.run(guarded, flags_parser=_parse)
