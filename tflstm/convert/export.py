"""Checkpoint -> folder of verified `.tflite` files: what the converter CLIs and the demo write.

For each quantization, the sequence model and step models of the given batch
sizes, each with its metadata as a `.json` sidecar, checked against TensorFlow
on held-out sequences; `report.json` lists the results. `keras_export` writes
the same folder for a saved Keras model with these helpers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tflstm.convert.checkpoint import convert_checkpoint
from tflstm.convert.verify import VariantReport, report
from tflstm.format import TOLERANCES, read_metadata
from tflstm.train import builder

log = logging.getLogger("tflstm")


def model_file_name(kind: str, quantize: str, batch_size: int, steps_per_call: int = 1) -> str:
    """`sequence_float32.tflite`, `step_int8.tflite`, `step_b64_dynamic.tflite`, `step_k7_float32.tflite`, ..."""
    batch = "" if batch_size == 1 else f"_b{batch_size}"
    chunk = "" if steps_per_call == 1 else f"_k{steps_per_call}"
    return f"{kind}{batch}{chunk}_{quantize}.tflite"


def write_model(out_dir: Path, name: str, model: bytes) -> Path:
    """Writes the model and its metadata sidecar (`.json`) next to it."""
    path = out_dir / name
    path.write_bytes(model)
    path.with_suffix(".json").write_text(read_metadata(model).to_json() + "\n")
    return path


def write_and_verify(
    out_dir: Path, name: str, model: bytes, x: np.ndarray, reference: np.ndarray, labels: np.ndarray | None
) -> VariantReport:
    """Writes one model with its sidecar, runs it on x and compares it with `reference`; logs the result."""
    write_model(out_dir, name, model)
    result = report(name, model, x, reference, labels)
    log.info(
        "converted %-26s %8d bytes  max error %.2e%s", name, result.size_bytes, result.max_abs_error,
        "" if result.accuracy is None else f"  accuracy {result.accuracy:.4f}",
    )
    return result


def write_report(out_dir: Path, reports: Sequence[VariantReport]) -> None:
    """Writes `report.json`: every file's report."""
    (out_dir / "report.json").write_text(json.dumps([dataclasses.asdict(r) for r in reports], indent=2) + "\n")


def convert_and_verify(
    checkpoint_dir: Path,
    out_dir: Path,
    quantizations: Sequence[str],
    x: np.ndarray,
    labels: np.ndarray | None,
    calibration: np.ndarray,
    step_batch_sizes: Sequence[int] = (1,),
    int8_io: bool = False,
) -> list[VariantReport]:
    """Writes the sequence model and step models per quantization, and checks each.

    Args:
        checkpoint_dir: a `builder.train` checkpoint directory.
        out_dir: output folder (created).
        quantizations: modes to write.
        x: float32 [n, time_steps, depth] held-out sequences.
        labels: int [n] classes for accuracy, or None.
        calibration: float32 [n, time_steps, depth] sequences for int8.
        step_batch_sizes: batch sizes of the step models. Default: (1,).
        int8_io: int8 inputs and outputs for "int8" models. Default: False.

    Returns:
        One report per file, also written to `out_dir/report.json`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    reference = builder.predict(checkpoint_dir, x)
    reports = []
    for quantize in quantizations:
        variants = [("sequence", 1)] + [("step", b) for b in step_batch_sizes]
        for kind, batch_size in variants:
            name = model_file_name(kind, quantize, batch_size)
            model = convert_checkpoint(
                checkpoint_dir, quantize=quantize, streaming=kind == "step", batch_size=batch_size,
                calibration=calibration if quantize == "int8" else None,
                int8_io=int8_io and quantize == "int8",
            )
            reports.append(write_and_verify(out_dir, name, model, x, reference, labels))
    write_report(out_dir, reports)
    return reports


def table(reports: Sequence[VariantReport], reference_accuracy: float | None, reference: str = "TF") -> str:
    """A Markdown table of the reports; `reference` names what the errors are against ("TF", "Keras")."""
    lines = [
        f"| variant | kind | quantization | file size (KiB) | accuracy | max abs error vs {reference} |",
        "|---|---|---|---:|---:|---:|",
    ]
    if reference_accuracy is not None:
        lines.append(f"| TensorFlow | sequence | float32 | - | {reference_accuracy:.4f} | 0 |")
    for r in reports:
        accuracy = "-" if r.accuracy is None else f"{r.accuracy:.4f}"
        lines.append(
            f"| {r.name} | {r.kind} | {r.quantization} | {r.size_bytes / 1024:.1f} | {accuracy} "
            f"| {r.max_abs_error:.2e} |"
        )
    return "\n".join(lines)


def float32_failures(reports: Sequence[VariantReport]) -> list[VariantReport]:
    """float32 files whose error exceeds `TOLERANCES["float32"]`."""
    limit = TOLERANCES["float32"]
    return [r for r in reports if r.quantization == "float32" and r.max_abs_error > limit]
