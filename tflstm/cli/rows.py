"""Input rows and output lines of `tflstm run`: CSV or `.npy` in, CSV or `.npy` out.

CSV input: one time step per line, features comma-separated. The first
non-blank line is a header, and skipped, when none of its fields is a number;
any other line that does not parse is an error naming the file and the line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple, TextIO

import numpy as np

from tflstm.console import UserError


class Row(NamedTuple):
    """One time step read from the input.

    Attributes:
        where: "<source>, line <n>" or "<source>, row <n>", for messages.
        values: float32 [features].
    """

    where: str
    values: np.ndarray


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_rows(lines: Iterable[str], source: str) -> Iterator[Row]:
    """Parses CSV lines into rows, skipping blank lines and a header (see the module docstring)."""
    first = True
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        fields = line.split(",")
        try:
            values = np.array([float(v) for v in fields], dtype=np.float32)
        except ValueError:
            if first and not any(_is_number(v) for v in fields):
                first = False
                continue  # a header
            raise UserError(f"{source}, line {number}: expected comma-separated numbers, got {line[:80]!r}") from None
        first = False
        yield Row(f"{source}, line {number}", values)


def npy_rows(path: Path) -> Iterator[Row]:
    """Rows of a `.npy` file holding numbers [steps, features]."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable .npy file ({' '.join(str(err).split())}).") from err
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise UserError(f"{path}: expected numbers [steps, features], got {array.dtype} of shape {list(array.shape)}.")
    return (Row(f"{path}, row {k}", row) for k, row in enumerate(array.astype(np.float32)))


def read_rows(path: str | None, stdin: TextIO) -> Iterator[Row]:
    """Rows from a `.npy` or CSV file, or CSV lines from `stdin` (as they arrive) when `path` is None."""
    if path is None:
        return csv_rows(stdin, "<stdin>")
    if path.endswith(".npy"):
        return npy_rows(Path(path))
    return _csv_file_rows(Path(path))


def _csv_file_rows(path: Path) -> Iterator[Row]:
    with path.open() as file:
        yield from csv_rows(file, str(path))


def flatten(y: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
    """One step's output as a flat array (a multi-output model's outputs in order)."""
    return np.concatenate([np.ravel(v) for v in y.values()]) if isinstance(y, dict) else np.ravel(y)


class OutputSink:
    """Where `tflstm run` writes outputs: stdout (flushed per line), a CSV file, or a `.npy` file.

    The file is opened when the sink is made, so an unwritable path fails
    before any row is streamed; `close` writes what `.npy` output collected.
    """

    def __init__(self, path: str | None, stdout: TextIO) -> None:
        self._npy = path is not None and path.endswith(".npy")
        self._rows: list[np.ndarray] = []
        self._file = stdout if path is None else open(path, "wb" if self._npy else "w")
        self._flush = path is None

    def write(self, y: np.ndarray | dict[str, np.ndarray]) -> None:
        """Writes one step's output."""
        if self._npy:
            self._rows.append(flatten(y))
            return
        self._file.write(",".join(f"{v:.6g}" for v in flatten(y)) + "\n")
        if self._flush:
            self._file.flush()

    def close(self) -> None:
        """Finishes the output (the `.npy` array [steps, outputs]) and closes a file."""
        if self._npy:
            np.save(self._file, np.stack(self._rows) if self._rows else np.zeros((0, 0), np.float32))
        if not self._flush:
            self._file.close()
