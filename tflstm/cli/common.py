"""What the `tflstm` subcommands share: the parser, argument types, path checks, extras.

Nothing here imports NumPy or TensorFlow, so `tflstm --help` and argument
errors are answered at once.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

from tflstm import __version__
from tflstm.console import EXIT_USER_ERROR, UserError

T = TypeVar("T")

EXTRAS = {
    "tensorflow": "train",
    "sklearn": "demo",
    "matplotlib": "demo",
    "starlette": "serve",
    "uvicorn": "serve",
}
"""Module -> the tflstm extra that installs it."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes are one `error: ...` line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """Adds `--verbose`: TensorFlow's logs, and tracebacks of errors."""
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's logs and tracebacks of errors")


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a float > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def fraction(text: str) -> float:
    """argparse type: a float strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def comma_list(item: Callable[[str], T], choices: Sequence[str] | None = None) -> Callable[[str], list[T]]:
    """argparse type: a comma-separated list of `item`s, each one of `choices` if given."""

    def parse(text: str) -> list[T]:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        if choices is not None:
            unknown = [p for p in parts if p not in choices]
            if unknown:
                raise argparse.ArgumentTypeError(f"{', '.join(unknown)} not in {', '.join(choices)}")
        return [item(p) for p in parts]

    return parse


def check_output_dir(path: str | Path, flag: str) -> Path:
    """`path` as a folder to write into: refused if it is a file or cannot be created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file; give a folder to write into.")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: cannot create or write into it ({existing} is not a writable folder).")
    return path


def check_output_file(path: str | Path, flag: str) -> Path:
    """`path` as a file to write: its folder must exist and be writable, and it must not be a folder."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file path.")
    if not folder.is_dir():
        raise UserError(f"{flag} {path}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{flag} {path}: not writable.")
    return path


def require_extras(command: str, *modules: str) -> None:
    """Raises UserError naming the pip command if a module a command needs is not installed.

    Checked without importing anything, so the message comes at once.
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        extras = ",".join(sorted({EXTRAS[m] for m in missing}))
        raise UserError(
            f"`tflstm {command}` needs {', '.join(missing)}, not installed here: pip install 'tflstm[{extras}]' "
            f"(from a wheel: pip install 'dist/tflstm-{__version__}-py3-none-any.whl[{extras}]')."
        )
