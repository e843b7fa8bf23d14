"""BasicMotions: smartwatch recordings of four activities, the sensor demo's data.

Four people wore a smart watch while standing, walking, running and playing
badminton; each recording is 10 s of its 3-axis accelerometer and 3-axis
gyroscope sampled at 10 Hz (100 steps of 6 raw values), 40 for training and 40
for testing. The files ship inside the `aeon` wheel
(`aeon/datasets/data/BasicMotions/*.ts`); only those files are read (with
`tflstm.train.ts_file`), so aeon's own dependencies are not needed:
`pip install --no-deps 'aeon==1.6.*'` is enough.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tflstm.normalization import from_data
from tflstm.train import ts_file
from tflstm.train.data import DataError, Split
from tflstm.train.spec import LayerSpec, ModelSpec

CHANNELS = ("accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z")
SAMPLE_RATE_HZ = 10
TIME_STEPS = 100
AEON = "aeon==1.6.*"
ROLLED_COPIES = 4


def data_dir() -> Path:
    """The BasicMotions folder inside the installed aeon package (aeon is not imported)."""
    found = importlib.util.find_spec("aeon")
    folder = None if found is None else Path(next(iter(found.submodule_search_locations))) / "datasets" / "data" / "BasicMotions"
    if folder is None or not folder.is_dir():
        raise DataError(
            f"The BasicMotions recordings ship inside the aeon wheel, which is not installed: "
            f"pip install --no-deps '{AEON}'"
        )
    return folder


def classes() -> tuple[str, ...]:
    """Activity names, in label order (as the file's `@classLabel` header lists them)."""
    return ts_file.read(data_dir() / "BasicMotions_TRAIN.ts").classes


def load() -> tuple[Split, Split]:
    """(train, test): x float32 [40, 100, 6] raw sensor values, y int64 [40] indices into `classes()`."""
    train = ts_file.read(data_dir() / "BasicMotions_TRAIN.ts")
    test = ts_file.read(data_dir() / "BasicMotions_TEST.ts")
    return Split(train.x, train.y), Split(test.x, test.y)


def spec(train: Split, units: tuple[int, ...] = (32, 32)) -> ModelSpec:
    """6 -> LSTM layers of `units` -> 4 activities, normalized by the training recordings' statistics."""
    return ModelSpec(
        input_depth=len(CHANNELS), layers=tuple(LayerSpec(u) for u in units), head="classification",
        num_outputs=4, time_steps=TIME_STEPS, dataset="basic_motions", normalization=from_data(train.x),
    )


def rolled(data: Split, copies: int, seed: int) -> Split:
    """`data` plus `copies` copies of each recording rolled in time by a random offset.

    The activities are steady, so a recording that starts at another sample is
    still that activity; training on them teaches the model to recognize an
    activity from wherever a stream starts, and multiplies the 40 recordings.
    """
    rng = np.random.default_rng(seed)
    shifted = [np.roll(r, rng.integers(1, r.shape[0]), axis=0) for _ in range(copies) for r in data.x]
    return Split(np.concatenate([data.x, np.stack(shifted)]), np.tile(data.y, copies + 1))


def train(
    checkpoint_dir: Path, data: Split, epochs: int, seed: int = 0, units: tuple[int, ...] = (32, 32),
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> Path:
    """Trains `spec(data, units)` on `data` and `ROLLED_COPIES` rolled copies of it (see
    `rolled`), with the loss on every step, so that every prefix of a recording gets the
    best answer it allows (a stream can be asked at any time)."""
    from tflstm.train import builder

    augmented = rolled(data, ROLLED_COPIES, seed)
    return builder.train(
        spec(data, units), augmented.x, augmented.y, checkpoint_dir, epochs=epochs, batch_size=16,
        learning_rate=5e-3, seed=seed, every_step=True, clip_norm=1.0, on_epoch=on_epoch,
    )
