"""Input normalization: a mean and a standard deviation per input feature.

A model trained on normalized inputs records them in its metadata as
`{"mean": [...], "std": [...]}` (one value per feature), so callers feed raw
sensor values and the runtime applies `(x - mean) / std` before the model.
NumPy only: the training side, the converter and the runtime share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Normalization = dict[str, list[float]]
"""{"mean": [depth floats], "std": [depth floats > 0]}."""

MIN_STD = 1e-6
"""Features whose standard deviation is below this (constant features) get std 1."""


def check(normalization: Mapping[str, Sequence[float]], depth: int | None) -> None:
    """Raises ValueError unless `normalization` holds exactly `mean` and `std`, `depth` finite numbers each, std > 0.

    Args:
        normalization: the mapping to check (e.g. parsed from hostile metadata).
        depth: features per time step.
    """
    if not isinstance(normalization, Mapping) or sorted(normalization) != ["mean", "std"]:
        raise ValueError(f"`normalization` must hold exactly `mean` and `std`, got {normalization!r}.")
    for key in ("mean", "std"):
        values = normalization[key]
        if not isinstance(values, (list, tuple)) or len(values) != depth or not all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v)
            for v in values
        ):
            raise ValueError(
                f"`normalization` {key} must be {depth} finite numbers (one per input feature), got {values!r}."
            )
    if any(not v > 0 for v in normalization["std"]):
        raise ValueError(f"`normalization` std values must be > 0, got {list(normalization['std'])!r}.")


def from_data(x: np.ndarray) -> Normalization:
    """Mean and standard deviation of each feature (last axis) over every other axis.

    Args:
        x: float [..., features], e.g. training windows [n, time, features].
    """
    flat = np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1])
    std = flat.std(axis=0)
    return {"mean": flat.mean(axis=0).tolist(), "std": np.where(std < MIN_STD, 1.0, std).tolist()}


def apply(x: np.ndarray, normalization: Mapping[str, Sequence[float]] | None) -> np.ndarray:
    """float32 `(x - mean) / std` over the last axis; `x` as float32 when `normalization` is None."""
    x = np.asarray(x, dtype=np.float32)
    if normalization is None:
        return x
    return (x - np.asarray(normalization["mean"], np.float32)) / np.asarray(normalization["std"], np.float32)
