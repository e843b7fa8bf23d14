"""What `tflstm.train.builder` builds: `ModelSpec` and `LayerSpec` (no TensorFlow needed).

The spec travels with a checkpoint as `spec.json`, so the converter can rebuild
the graph for any number of time steps and batch size, and the command-line
tools can check data and flags against it before TensorFlow is imported.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from tflstm.normalization import Normalization
from tflstm.normalization import check as check_normalization

SPEC_FILE = "spec.json"
CHECKPOINT_PREFIX = "model.ckpt"
"""The TensorFlow checkpoint's files in a checkpoint directory: model.ckpt.index, model.ckpt.data-*."""
HEADS = ("classification", "binary", "regression")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """Arguments of one `TFLiteLSTMCell` (see there)."""

    num_units: int
    use_peepholes: bool = False
    cell_clip: float | None = None
    num_proj: int | None = None
    proj_clip: float | None = None
    forget_bias: float = 1.0


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the builder builds.

    Attributes:
        input_depth: features per time step.
        layers: the LSTM layers, bottom first.
        head: "classification" (softmax over `num_outputs` classes), "binary"
            (`num_outputs` independent sigmoid outputs) or "regression"
            (`num_outputs` linear outputs).
        num_outputs: classes or regression outputs.
        time_steps: length of the training windows (the sequence model's length).
        dataset: name of a built-in dataset the model was trained on ("digits",
            "basic_motions"), used to verify conversions; None for user data.
        normalization: `{"mean": [...], "std": [...]}` per input feature: the
            model sees (x - mean) / std of the raw inputs x. Training and
            prediction apply it, and the converter records it in every model's
            metadata, so callers feed raw values. None: the model sees x as it is.
    """

    input_depth: int
    layers: tuple[LayerSpec, ...]
    head: str
    num_outputs: int
    time_steps: int
    dataset: str | None = None
    normalization: Normalization | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "layers",
            tuple(l if isinstance(l, LayerSpec) else LayerSpec(**l) for l in self.layers),
        )
        if self.head not in HEADS:
            raise ValueError(f"`head` must be one of {HEADS}, got {self.head!r}.")
        for field in ("input_depth", "num_outputs", "time_steps"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"`{field}` must be a positive int, got {value!r}.")
        if not self.layers:
            raise ValueError("`layers` must hold at least one LayerSpec, got none.")
        if self.normalization is not None:
            check_normalization(self.normalization, self.input_depth)
            object.__setattr__(self, "normalization", {
                "mean": [float(v) for v in self.normalization["mean"]],
                "std": [float(v) for v in self.normalization["std"]],
            })

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Inverse of `to_dict`."""
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        """Writes `spec.json` into `directory`."""
        path = Path(directory) / SPEC_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ModelSpec:
        """Reads `spec.json` from a checkpoint directory.

        Raises:
            FileNotFoundError: there is no spec.json.
            ValueError: it is not a valid spec.
        """
        path = Path(directory) / SPEC_FILE
        if not path.is_file():
            raise FileNotFoundError(f"No {SPEC_FILE} in {directory}: is it a tflstm checkpoint directory?")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a tflstm model spec: {err}") from err


def load_checkpoint_spec(directory: str | Path) -> ModelSpec:
    """The spec of a checkpoint directory, checked to hold the trained weights too.

    Raises:
        FileNotFoundError: spec.json or the weights (model.ckpt.index) are missing.
        ValueError: spec.json is not a valid spec.
    """
    spec = ModelSpec.load(directory)
    if not (Path(directory) / f"{CHECKPOINT_PREFIX}.index").is_file():
        raise FileNotFoundError(f"{directory} has {SPEC_FILE} but no trained weights ({CHECKPOINT_PREFIX}.index).")
    return spec
