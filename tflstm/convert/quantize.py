"""Quantization settings of the TFLite converter, one mode at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import tensorflow as tf

from tflstm.format import QUANTIZATIONS

RepresentativeDataset = Callable[[], Iterable[list[np.ndarray]]]


def configure(
    converter: tf.compat.v1.lite.TFLiteConverter,
    quantize: str,
    representative_dataset: RepresentativeDataset | None,
    int8_io: bool,
) -> None:
    """Sets `converter` up for one quantization mode.

    Args:
        converter: a TF1 `TFLiteConverter`, not yet converted.
        quantize: "float32", "float16" (float16 weights), "dynamic" (int8 weights,
            float activations) or "int8" (full integer: int8 activations, int16
            cell state, int32 biases).
        representative_dataset: for "int8" only (required there): a callable
            returning an iterable of input lists, as TensorFlow's converter takes.
        int8_io: for "int8" only: int8 model inputs and outputs instead of float32.
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"`quantize` must be one of {QUANTIZATIONS}, got {quantize!r}.")
    if quantize == "int8" and representative_dataset is None:
        raise ValueError(
            "`quantize='int8'` needs a `representative_dataset`: a callable yielding lists of "
            "input arrays (about 100 sequences calibrate well)."
        )
    if quantize != "int8" and representative_dataset is not None:
        raise ValueError(
            f"`representative_dataset` is only used with quantize='int8', got quantize={quantize!r}."
        )
    if int8_io and quantize != "int8":
        raise ValueError(f"`int8_io` needs quantize='int8', got quantize={quantize!r}.")
    if quantize == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    # Per-channel dense quantization yields FULLY_CONNECTED v12, which
    # tflite-runtime 2.14 (the oldest runtime tflstm supports) cannot load.
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True  # noqa: SLF001
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.int8 if int8_io else tf.float32
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
