"""Trains an LSTM on your data (TensorFlow) and writes a checkpoint that `tflstm convert` takes.

Data (--data), raw values; the normalization is computed from the training part:

  .npz  x: float [n, time, features], one window per sequence;
        y: int [n] class labels 0..K-1, or float [n] / [n, outputs] targets.
  .csv  a header line, then one line per time step:
            sequence,label,<feature 1>,...,<feature D>
        lines of a sequence are consecutive and share its id and label (a
        number); every sequence has the same number of lines.

Holds out a random part of the sequences (--held-out) to report on and to
verify conversions with. Writes OUT/checkpoint/: spec.json (the model and its
normalization), model.ckpt.* (the weights) and held_out.npz. Then:

    tflstm convert OUT/checkpoint     # writes OUT/models/*.tflite, verified

Example:

    tflstm train --data walks.csv --out-dir runs/walks --layers 64,32 --epochs 30
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from tflstm.cli.common import (
    add_verbose, check_output_dir, comma_list, fraction, positive_float, positive_int, require_extras,
)
from tflstm.console import epoch_logger, log, quiet_tensorflow
from tflstm.train.spec import HEADS

if TYPE_CHECKING:
    import numpy as np

CHECKPOINT_DIR = "checkpoint"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers `tflstm train`."""
    parser = subparsers.add_parser(
        "train", help="train an LSTM on your .npz or .csv data (TensorFlow)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, metavar="FILE", help="training data: .npz or .csv (see above)")
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="output folder (checkpoint/ goes there)")
    parser.add_argument("--layers", type=comma_list(positive_int), default=[64], metavar="UNITS",
                        help="units of each LSTM layer, bottom first, e.g. 64,32 (default: 64)")
    parser.add_argument("--head", choices=HEADS, default="classification",
                        help="classification (softmax), binary (sigmoid) or regression (linear); default: classification")
    parser.add_argument("--num-outputs", type=positive_int,
                        help="classes or target values (default: from y: max label + 1, or y's columns)")
    parser.add_argument("--epochs", type=positive_int, default=20, help="training epochs (default: 20)")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="sequences per step (default: 32)")
    parser.add_argument("--learning-rate", type=positive_float, default=5e-3, help="Adam's (default: 0.005)")
    parser.add_argument("--held-out", type=fraction, default=0.2, help="part of the sequences held out (default: 0.2)")
    parser.add_argument("--every-step", action="store_true",
                        help="loss on every time step's prediction, not only the last: for streams that want "
                             "an answer at any time (the label must hold for the whole sequence)")
    parser.add_argument("--peepholes", action="store_true", help="LSTM layers with peephole connections")
    parser.add_argument("--cell-clip", type=positive_float, help="clip the cell state to +-this value")
    parser.add_argument("--no-normalization", action="store_true",
                        help="feed the values as they are (default: (x - mean) / std per feature, recorded in the models)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialization, shuffling and hold-out (default: 0)")
    add_verbose(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Runs `tflstm train`; returns the exit code."""
    require_extras("train", "tensorflow")
    from tflstm.normalization import from_data
    from tflstm.train import data
    from tflstm.train.spec import LayerSpec, ModelSpec

    out = check_output_dir(args.out_dir, "--out-dir")
    everything = data.load(args.data)
    train, held = data.split(everything, args.held_out, args.seed)
    _, time_steps, depth = everything.x.shape
    spec = ModelSpec(
        input_depth=depth,
        layers=tuple(LayerSpec(units, use_peepholes=args.peepholes, cell_clip=args.cell_clip) for units in args.layers),
        head=args.head, num_outputs=args.num_outputs or data.num_outputs(everything.y, args.head),
        time_steps=time_steps, normalization=None if args.no_normalization else from_data(train.x),
    )
    train_y, held_y = data.targets(train.y, spec, args.data), data.targets(held.y, spec, args.data)
    with quiet_tensorflow(args.verbose):
        log.info("%s: %d sequences of %d steps x %d features; training on %d, holding out %d",
                 args.data, len(everything.x), time_steps, depth, len(train.x), len(held.x))
        log.info("model: %d -> %s -> %s %d", depth, " -> ".join(f"LSTM {u}" for u in args.layers), spec.head,
                 spec.num_outputs)
        from tflstm.train import builder

        started = time.monotonic()
        metric = "train MAE" if spec.head == "regression" else "train accuracy"
        checkpoint = builder.train(
            spec, train.x, train_y, out / CHECKPOINT_DIR, epochs=args.epochs, batch_size=args.batch_size,
            learning_rate=args.learning_rate, seed=args.seed, every_step=args.every_step,
            on_epoch=epoch_logger(args.epochs, metric),
        )
        data.save_held_out(checkpoint, data.Split(held.x, held_y), train.x)
        log.info("held-out %s on %d sequences; %.0f s", held_out_score(builder.predict(checkpoint, held.x)[:, -1],
                 held_y, spec.head), len(held.x), time.monotonic() - started)
    log.info("checkpoint: %s\nnext: tflstm convert %s", checkpoint, checkpoint)
    return 0


def held_out_score(last: np.ndarray, y: np.ndarray, head: str) -> str:
    """"accuracy 0.9583" (classification, binary) or "MAE 0.0123" (regression) of the last step's predictions."""
    import numpy as np

    if head == "classification":
        return f"accuracy {np.mean(last.argmax(-1) == y):.4f}"
    if head == "binary":
        return f"accuracy {np.mean((last > 0.5) == (y > 0.5)):.4f}"
    return f"MAE {np.mean(np.abs(last - y)):.4f}"
