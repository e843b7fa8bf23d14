"""A reader of `.ts` time-series classification files (the sktime / aeon text format).

The format: `#` comment lines, `@` header lines (`@problemName`, `@dimensions`,
`@equalLength`, `@seriesLength`, `@classLabel true <labels...>`, ...), then
after `@data` one case per line: each dimension's values comma-separated,
dimensions separated by `:`, the class label last. This reader takes what
sensor recordings need: equal-length, multivariate, labelled series without
time stamps or missing values; anything else is refused with the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from tflstm.train.data import DataError


class TsData(NamedTuple):
    """The cases of one `.ts` file.

    Attributes:
        x: float32 [cases, time, dimensions], e.g. [40, 100, 6].
        y: int64 [cases], indices into `classes`.
        classes: the class labels in the order of the `@classLabel` header.
        problem: the `@problemName` header, or "".
    """

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    problem: str


def read(path: str | Path) -> TsData:
    """Reads a `.ts` file; DataError naming the file and line if it is not one this reader takes."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read it ({err}).") from err
    return parse(text, str(path))


def parse(text: str, source: str = "<ts>") -> TsData:
    """Parses the text of a `.ts` file (`source` names it in errors)."""
    headers: dict[str, tuple[int, list[str]]] = {}  # name -> (line, values)
    dimensions_count = 0
    classes: list[str] = []
    cases: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}, line {number}"
        if not in_data:
            if not line.startswith("@"):
                raise DataError(f"{where}: expected a @header or @data before the cases, got {line[:40]!r}.")
            key, *values = line.split()
            key = key[1:].lower()
            if key == "data":
                in_data = True
                dimensions_count = _check_headers(headers, source, number)
                classes = headers["classlabel"][1][1:]
            else:
                headers[key] = (number, values)
            continue
        *dimensions, label = line.split(":")
        try:
            values = [np.array([float(v) for v in dim.split(",")], dtype=np.float32) for dim in dimensions]
        except ValueError:
            raise DataError(f"{where}: values must be numbers (no missing values or time stamps).") from None
        lengths = {len(v) for v in values}
        if len(values) != dimensions_count or len(lengths) != 1:
            raise DataError(f"{where}: expected {dimensions_count} dimension(s) of equal length, got "
                            f"{len(values)} of lengths {sorted(lengths)}.")
        if label not in classes:
            raise DataError(f"{where}: class label {label!r} is not one of {classes}.")
        cases.append(np.stack(values, axis=-1))
        labels.append(label)
    if not cases:
        raise DataError(f"{source}: no cases (a @data line followed by one case per line).")
    if len({c.shape for c in cases}) != 1:
        raise DataError(f"{source}: cases of different lengths; this reader takes equal-length series.")
    return TsData(
        x=np.stack(cases),
        y=np.array([classes.index(label) for label in labels], dtype=np.int64),
        classes=tuple(classes),
        problem=" ".join(headers.get("problemname", (0, []))[1]),
    )


def _check_headers(headers: dict[str, tuple[int, list[str]]], source: str, data_line: int) -> int:
    """Refuses what this reader does not take, naming the header's line; returns the dimensions."""

    def value(name: str) -> str | None:
        return headers[name][1][0].lower() if headers.get(name, (0, []))[1] else None

    def fail(name: str, message: str) -> DataError:
        return DataError(f"{source}, line {headers.get(name, (data_line,))[0]}: {message}")

    if value("timestamps") == "true":
        raise fail("timestamps", "series with time stamps are not supported.")
    if value("equallength") == "false":
        raise fail("equallength", "series of unequal length are not supported.")
    if value("classlabel") != "true" or len(headers["classlabel"][1]) < 2:
        raise fail("classlabel", "expected `@classLabel true <labels...>` before @data.")
    if value("univariate") == "true":
        return 1
    if not (value("dimensions") or "").isdigit():
        raise fail("dimensions", "expected `@dimensions <count>` (or `@univariate true`) before @data.")
    return int(headers["dimensions"][1][0])
