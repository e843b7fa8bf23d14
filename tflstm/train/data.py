"""Training data from files, checked against a model spec before TensorFlow is loaded.

File layouts (values are raw: normalization is computed and recorded by training):

- `.npz`: `x` float [n, time, features], one window (sequence) per row; `y` int
  [n] class labels 0..K-1 (classification), or float [n] or [n, outputs]
  targets (0/1 for binary, any value for regression).
- `.csv`: one line per time step, after a header line naming the columns:

      sequence,label,<feature 1>,...,<feature D>
      walk_01,1,0.12,-9.81,0.40
      walk_01,1,0.15,-9.79,0.38
      ...

  The lines of one sequence are consecutive and share its `sequence` id (any
  text) and its `label` (a number, as `y` above); every sequence has the same
  number of lines (time steps).

A checkpoint written by `tflstm train` also holds `held_out.npz` (the windows
held out from training, and some training windows to calibrate int8 models), so
that `tflstm convert` can verify the models it writes without being told more.
NumPy only.
"""

from __future__ import annotations

import csv
import importlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tflstm.train.spec import ModelSpec

HELD_OUT_FILE = "held_out.npz"
CALIBRATION_SIZE = 100
BUILTIN = {"digits": "tflstm.train.digits", "basic_motions": "tflstm.train.motions"}
"""Built-in datasets by `ModelSpec.dataset` name -> module with `load(seed) -> (train, test)`."""


class DataError(ValueError):
    """A data file is missing, unreadable, or does not fit the model; the message says which."""


class Split(NamedTuple):
    """Batch-major windows: x float32 [n, time, features] (raw values), y [n] or [n, outputs] or None."""

    x: np.ndarray
    y: np.ndarray | None


def load(path: str | Path, *, labels_required: bool = True) -> Split:
    """Reads a `.npz` or `.csv` data file (see the module docstring for the layouts).

    Args:
        path: the file.
        labels_required: a missing `y` (`.npz`) is an error. Default: True.

    Raises:
        DataError: the file is missing, unreadable or not in the layout.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    if path.suffix == ".npz":
        data = _load_npz(path)
    elif path.suffix == ".csv":
        data = _load_csv(path)
    else:
        raise DataError(f"{path}: expected a .npz or .csv file (see `tflstm train --help`).")
    if labels_required and data.y is None:
        raise DataError(f"{path}: no `y` array (labels or targets, one per sequence of `x`).")
    return data


def _load_npz(path: Path) -> Split:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable .npz file ({err}).") from err
    if "x" not in arrays:
        raise DataError(
            f"{path}: no `x` array (float [n, time, features]); the file holds {sorted(arrays) or 'nothing'}."
        )
    x, y = arrays["x"], arrays.get("y")
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.number) or 0 in x.shape:
        raise DataError(f"{path}: `x` must be numbers [n, time, features], got {x.dtype} of shape {list(x.shape)}.")
    if y is not None and (len(y) != len(x) or not np.issubdtype(y.dtype, np.number)):
        raise DataError(f"{path}: `y` must hold one number (or row) per sequence: {len(x)} expected, got "
                        f"{y.dtype} of shape {list(y.shape)}.")
    return Split(x.astype(np.float32), y)


def _load_csv(path: Path) -> Split:
    try:
        with path.open(newline="") as file:
            lines = list(csv.reader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: not a readable CSV file ({err}).") from err
    if len(lines) < 2 or len(lines[0]) < 3:
        raise DataError(f"{path}: expected a header `sequence,label,<features...>` and one line per time step.")
    header = lines[0]
    sequences: dict[str, tuple[float, list[list[float]]]] = {}
    current = None
    for number, fields in enumerate(lines[1:], start=2):
        if not fields or not "".join(fields).strip():
            continue
        if len(fields) != len(header):
            raise DataError(f"{path}, line {number}: expected {len(header)} fields like the header, got {len(fields)}.")
        name = fields[0]
        try:
            label, row = float(fields[1]), [float(v) for v in fields[2:]]
        except ValueError:
            raise DataError(f"{path}, line {number}: label and features must be numbers, got {fields[1:]}.") from None
        if name != current and name in sequences:
            raise DataError(f"{path}, line {number}: sequence {name!r} continues after other sequences; "
                            "keep the lines of a sequence together.")
        current = name
        first_label, rows = sequences.setdefault(name, (label, []))
        if label != first_label:
            raise DataError(f"{path}, line {number}: sequence {name!r} changes its label from {first_label:g} "
                            f"to {label:g}; a sequence has one label.")
        rows.append(row)
    if not sequences:
        raise DataError(f"{path}: no data lines after the header.")
    lengths = {name: len(rows) for name, (_, rows) in sequences.items()}
    first = next(iter(lengths))
    for name, length in lengths.items():
        if length != lengths[first]:
            raise DataError(f"{path}: sequence {name!r} has {length} time steps, sequence {first!r} has "
                            f"{lengths[first]}: every sequence needs the same length.")
    x = np.array([rows for _, rows in sequences.values()], dtype=np.float32)
    y = np.array([label for label, _ in sequences.values()])
    return Split(x, y.astype(np.int64) if np.all(y == np.round(y)) else y.astype(np.float32))


def num_outputs(y: np.ndarray, head: str) -> int:
    """Outputs the head needs for targets `y`: classes (max label + 1) or target columns."""
    if head == "classification":
        return int(np.max(y)) + 1
    return 1 if np.ndim(y) == 1 else int(np.shape(y)[1])


def targets(y: np.ndarray, spec: ModelSpec, source: str) -> np.ndarray:
    """`y` as `builder.train` takes it: int64 [n] labels, or float32 [n, num_outputs] targets.

    Raises:
        DataError: `y` does not fit the spec's head.
    """
    if spec.head == "classification":
        if np.ndim(y) != 1 or np.any(y != np.round(y)) or np.min(y) < 0 or np.max(y) >= spec.num_outputs:
            raise DataError(f"{source}: classification labels must be integers 0..{spec.num_outputs - 1}, one per "
                            f"sequence; got {np.asarray(y).dtype} of shape {list(np.shape(y))} with values "
                            f"{np.min(y):g}..{np.max(y):g}.")
        return np.asarray(y, dtype=np.int64)
    y = np.asarray(y, dtype=np.float32).reshape(len(y), -1)
    if y.shape[1] != spec.num_outputs:
        raise DataError(f"{source}: {spec.head} targets need {spec.num_outputs} value(s) per sequence, got {y.shape[1]}.")
    if spec.head == "binary" and not np.all((y == 0) | (y == 1)):
        raise DataError(f"{source}: binary targets must be 0 or 1.")
    return y


def check_fits(x: np.ndarray, spec: ModelSpec, source: str) -> None:
    """Raises DataError unless x is [n, spec.time_steps, spec.input_depth] with n >= 1."""
    expected = [spec.time_steps, spec.input_depth]
    if np.ndim(x) != 3 or list(np.shape(x)[1:]) != expected or len(x) == 0:
        raise DataError(f"{source}: the model takes sequences of {expected[0]} time steps of {expected[1]} "
                        f"features, [n, {expected[0]}, {expected[1]}]; got {list(np.shape(x))}.")


def split(data: Split, held_out_fraction: float, seed: int) -> tuple[Split, Split]:
    """(train, held out): a random `held_out_fraction` of the sequences held out (at least one)."""
    if not 0 < held_out_fraction < 1:
        raise DataError(f"The held-out fraction must be in (0, 1), got {held_out_fraction!r}.")
    if len(data.x) < 2:
        raise DataError(f"Need at least 2 sequences to hold some out, got {len(data.x)}.")
    order = np.random.default_rng(seed).permutation(len(data.x))
    count = min(len(order) - 1, max(1, round(len(order) * held_out_fraction)))
    held, kept = order[:count], order[count:]
    return Split(data.x[kept], data.y[kept]), Split(data.x[held], data.y[held])


def save_held_out(checkpoint_dir: str | Path, held_out: Split, calibration: np.ndarray) -> Path:
    """Writes `held_out.npz` (x, y, calibration) next to a checkpoint for `tflstm convert`."""
    path = Path(checkpoint_dir) / HELD_OUT_FILE
    np.savez(path, x=held_out.x, y=held_out.y, calibration=calibration[:CALIBRATION_SIZE])
    return path


def verification_data(checkpoint_dir: str | Path, path: str | Path | None, spec: ModelSpec) -> tuple[Split, np.ndarray]:
    """Held-out windows and int8 calibration windows for converting a checkpoint.

    From `path` if given (labels optional; its windows also calibrate), else the
    checkpoint's `held_out.npz`, else the test split of the spec's built-in
    dataset. Labels are kept for classification models only (accuracy).

    Raises:
        DataError: no source, or windows that do not fit the spec.
    """
    if path is not None:
        data, source = load(path, labels_required=False), str(path)
        calibration = data.x
    elif (Path(checkpoint_dir) / HELD_OUT_FILE).is_file():
        source = str(Path(checkpoint_dir) / HELD_OUT_FILE)
        with np.load(source) as npz:
            data, calibration = Split(npz["x"], npz["y"]), npz["calibration"]
    elif spec.dataset in BUILTIN:
        train, data = importlib.import_module(BUILTIN[spec.dataset]).load()
        source, calibration = f"the {spec.dataset} data", train.x
    else:
        raise DataError(f"{checkpoint_dir} has no {HELD_OUT_FILE} and names no built-in dataset "
                        f"({spec.dataset!r}): pass held-out windows with --data (.npz or .csv).")
    check_fits(data.x, spec, source)
    check_fits(calibration, spec, f"{source} (calibration)")
    labels = data.y if spec.head == "classification" and data.y is not None else None
    if labels is not None:
        labels = targets(labels, spec, source)
    return Split(data.x.astype(np.float32), labels), calibration[:CALIBRATION_SIZE].astype(np.float32)
