"""Saved Keras model -> folder of verified `.tflite` files, as `export.convert_and_verify` writes for checkpoints.

For each quantization, the sequence model and the step model (or chunk model
with `steps_per_call` > 1), each with its metadata as a `.json` sidecar, checked
against Keras on held-out sequences fed the same way (`keras_reference`);
`report.json` lists the results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tflstm.convert.export import model_file_name, write_and_verify, write_report
from tflstm.convert.keras import from_keras, time_steps_per_invoke
from tflstm.convert.keras_graph import plan
from tflstm.convert.keras_model import load_model, read_graph
from tflstm.convert.keras_reference import keras_outputs
from tflstm.convert.verify import VariantReport


def convert_and_verify_keras(
    model_or_path: Any,
    out_dir: Path,
    quantizations: Sequence[str],
    x: np.ndarray,
    calibration: np.ndarray,
    steps_per_call: int = 1,
) -> list[VariantReport]:
    """Writes the sequence model and the step (or chunk) model per quantization, and checks each against Keras.

    Args:
        model_or_path: a Keras model or the path of a saved one (see `from_keras`).
        out_dir: output folder (created).
        quantizations: modes to write.
        x: float32 [n, time, features] held-out sequences; time a multiple of
            the model's window (if fixed) and of `steps_per_call`.
        calibration: float32 [m, time, features] sequences to calibrate "int8" on.
        steps_per_call: time steps per call of the streaming model: 1, or the
            window of a model that mixes time steps (Flatten, ...). Default: 1.

    Returns:
        One report per file, also written to `out_dir/report.json`.

    Raises:
        UnsupportedModelError: a layer the conversion refuses, with what to do.
    """
    model = load_model(model_or_path)
    graph = read_graph(model)
    # A model without a fixed window gets a sequence model of the held-out length.
    variants = ((False, 1 if graph.window is not None else x.shape[1]), (True, steps_per_call))
    for streaming, k in variants:  # refuses unsupported layers before anything is written
        plan(graph, time_steps_per_invoke(graph, streaming, k))
    out_dir.mkdir(parents=True, exist_ok=True)
    references: dict[int, np.ndarray] = {}
    reports = []
    for quantize in quantizations:
        for streaming, k in variants:
            name = model_file_name("step" if streaming else "sequence", quantize, 1, k if streaming else 1)
            converted = from_keras(
                model, quantize=quantize, streaming=streaming, steps_per_call=k,
                representative_dataset=(lambda: iter(calibration)) if quantize == "int8" else None,
            )
            time_steps = time_steps_per_invoke(graph, streaming, k)
            if time_steps not in references:
                references[time_steps] = keras_outputs(model, x, time_steps)
            reports.append(write_and_verify(out_dir, name, converted, x, references[time_steps], None))
    write_report(out_dir, reports)
    return reports


def held_out_sequences(
    window: int | None,
    depth: int,
    steps_per_call: int = 1,
    *,
    data: str | Path | None = None,
    sequences: int = 16,
    calibration_size: int = 100,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(x, calibration) float32 [n, time, depth] sequences to verify and calibrate a Keras conversion with.

    Args:
        window: the model's fixed window, or None.
        depth: features per time step.
        steps_per_call: time steps per call of the streaming model.
        data: an .npz with `x` (and optionally `calibration`, the same layout);
            None: seeded standard-normal sequences 3 windows (or 3 x 8 steps) long,
            a multiple of `steps_per_call`.
        sequences: synthetic held-out sequences. Default: 16.
        calibration_size: calibration sequences kept. Default: 100.
        seed: seed of the synthetic data. Default: 0.

    Raises:
        ValueError: an .npz without `x`, or with sequences of another depth.
    """
    if data is not None:
        with np.load(data) as npz:
            if "x" not in npz:
                raise ValueError(f"{data} holds {sorted(npz.files)}; expected `x` float [n, time, {depth}].")
            x = npz["x"].astype(np.float32)
            calibration = npz["calibration"].astype(np.float32) if "calibration" in npz else x
        if x.ndim != 3 or x.shape[2] != depth:
            raise ValueError(f"{data}: `x` must be [n, time, {depth}], got {list(x.shape)}.")
        return x, calibration[:calibration_size]
    length = 3 * math.lcm(window or 8, steps_per_call)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(sequences, length, depth)).astype(np.float32)
    return x, rng.normal(size=(calibration_size, length, depth)).astype(np.float32)
