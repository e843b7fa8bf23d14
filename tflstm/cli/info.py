"""Shows what a `.tflite` model is: kind, quantization, inputs, outputs, state tensors,
normalization, batch and time steps per invoke, fused ops, file size, fingerprint.

Reads the file only (no interpreter is created), so it also describes sequence
models and works without TensorFlow. --json prints the embedded metadata.

    tflstm info demo_out/digits/models/step_float32.tflite
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers `tflstm info`."""
    parser = subparsers.add_parser(
        "info", help="show a model's kind, tensors, state, normalization, size (runtime only)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="a .tflite model")
    parser.add_argument("--json", action="store_true", help="print the model's tflstm metadata as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Runs `tflstm info`; returns the exit code."""
    from tflstm.runtime.loading import load_model
    from tflstm.runtime.summary import ModelSummary

    loaded = load_model(args.model)
    if args.json:
        print(loaded.metadata.to_json())
        return 0
    summary = ModelSummary.of(loaded.view, loaded.metadata, args.model)
    width = max(len(label) for label, _ in summary.lines())
    print(f"{'model':<{width}}  {args.model}")
    for label, text in summary.lines():
        print(f"{label:<{width}}  {text}")
    return 0
