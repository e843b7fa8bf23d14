"""Fuzzes the runtime's model loading with mutated models, each case in a forked child process.

Usage: python tests/reliability/fuzz_models.py --cases N [--seed S] [--backend B] MODEL.tflite ...

Runtime-only (numpy + one backend): runs in the main venv (ai-edge-litert) and in
the edge venv (tflite-runtime). For every case a mutation of one of the models is
loaded and, if it loads, stepped through fixed inputs in a forked child; the parent
records how the child ended:

  refused    a TFLSTMError (ModelError, ...) was raised: the wanted outcome
  same       loaded and stepped to exactly the original's outputs
  changed    loaded and stepped to other outputs without an error (silently changed)
  foreign    an exception that is not a TFLSTMError (type recorded)
  signal     the child died of a signal (segfault, abort...)
  hang       the child ran over the time limit

Mutations: bit flips, random bytes, boundary values written over 4-byte words,
truncation, inserted or deleted chunks, swapped words; and the same "re-sealed"
(the tflstm checksum recomputed afterwards, as an attacker would, so that the
flatbuffer and metadata checks are what stands in the way). A damaged model (not
re-sealed) with tflstm metadata must never be `changed`; a re-sealed one or one
without tflstm metadata can be (nothing in the file says what it should compute),
and the report counts those apart. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from tflstm.runtime import StreamingModel, TFLSTMError

CHILD_SECONDS = 20
MUTATIONS = ("bits", "bytes", "word", "truncate", "insert", "delete", "swap")
_BOUNDARY_WORDS = (0, 1, 2, 4, 8, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def mutate(content: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random mutation of `content` that changes it: (its name, the bytes)."""
    data = bytearray(content)
    kind = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
    size = len(data)
    if kind == "bits":
        for _ in range(int(rng.integers(1, 9))):
            position = int(rng.integers(size))
            data[position] ^= 1 << int(rng.integers(8))
    elif kind == "bytes":
        for _ in range(int(rng.integers(1, 5))):
            data[int(rng.integers(size))] = int(rng.integers(256))
    elif kind == "word":
        position = int(rng.integers(size // 4)) * 4
        choices = (*_BOUNDARY_WORDS, size, size - 4, size + 4, int(rng.integers(0, 1 << 32)))
        value = choices[int(rng.integers(len(choices)))]
        data[position : position + 4] = int(value).to_bytes(4, "little")
    elif kind == "truncate":
        del data[int(rng.integers(size)) :]
    elif kind == "insert":
        position = int(rng.integers(size))
        data[position:position] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    elif kind == "delete":
        position = int(rng.integers(size))
        del data[position : position + int(rng.integers(1, 64))]
    else:  # swap two aligned words
        a, b = (int(rng.integers(size // 4)) * 4 for _ in range(2))
        data[a : a + 4], data[b : b + 4] = data[b : b + 4], data[a : a + 4]
    if bytes(data) == content:
        return mutate(content, rng)
    return kind, bytes(data)


def reseal(content: bytes) -> bytes | None:
    """`content` with its tflstm checksum recomputed, or None when it cannot be found."""
    from tflstm.integrity import CHECKSUM_PLACEHOLDER, _checksum_position, seal
    from tflstm.flatbuf import ModelView

    try:
        position = _checksum_position(ModelView(content))
    except (TFLSTMError, ValueError):
        return None
    blank = content[:position] + CHECKSUM_PLACEHOLDER.encode() + content[position + 64 :]
    return seal(blank)


def outputs(model: StreamingModel, inputs: np.ndarray) -> np.ndarray:
    """The model's outputs for `inputs` [steps, depth] from the zero state."""
    model.reset()
    return np.stack([np.asarray(model.step(row), np.float32) for row in inputs])


def run_case(content: bytes, inputs: np.ndarray, expected: np.ndarray, backend: str) -> int:
    """In the child: load and step; exit code says how it ended (see `OUTCOMES`)."""
    try:
        model = StreamingModel(content, backend=backend)
        if model.input_depth != inputs.shape[1]:
            return OUTCOMES["changed"]
        got = outputs(model, inputs)
    except TFLSTMError:
        return OUTCOMES["refused"]
    except BaseException as err:  # the defect this fuzzer looks for
        sys.stderr.write(f"FOREIGN {type(err).__name__}: {err}\n")
        return OUTCOMES["foreign"]
    return OUTCOMES["same"] if got.shape == expected.shape and np.array_equal(got, expected) else OUTCOMES["changed"]


OUTCOMES = {"refused": 10, "same": 11, "changed": 12, "foreign": 13}
_NAMES = {code: name for name, code in OUTCOMES.items()}


def fork_case(content: bytes, inputs: np.ndarray, expected: np.ndarray, backend: str) -> tuple[str, str]:
    """Runs one case in a forked child: (outcome, detail)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        os.dup2(write, 2)
        signal.alarm(CHILD_SECONDS)
        code = run_case(content, inputs, expected, backend)
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        detail = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return ("hang" if number == signal.SIGALRM else "signal"), signal.Signals(number).name
    code = os.WEXITSTATUS(status)
    return _NAMES.get(code, "foreign"), detail.strip()[-300:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="step models to mutate")
    parser.add_argument("--cases", type=int, default=300, help="cases in all (default: 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    originals = []
    for path in args.models:
        content = Path(path).read_bytes()
        model = StreamingModel(content, backend=args.backend)
        inputs = np.random.default_rng(1).normal(size=(6, model.input_depth)).astype(np.float32)
        sealed = model.metadata.checksum is not None
        originals.append((Path(path).name, content, inputs, outputs(model, inputs), sealed, model.backend))
        del model
    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    started = time.monotonic()
    for case in range(args.cases):
        name, content, inputs, expected, sealed, backend = originals[case % len(originals)]
        kind, mutated = mutate(content, rng)
        resealed = sealed and case % 3 == 2
        if resealed:
            again = reseal(mutated)
            if again is None:
                resealed = False
            else:
                mutated = again
        outcome, detail = fork_case(mutated, inputs, expected, backend)
        group = "attacker" if resealed else ("damaged" if sealed else "foreign_model")
        counts[f"{group}:{outcome}"] += 1
        if outcome not in ("refused", "same") and len(examples.setdefault(f"{group}:{outcome}", [])) < 5:
            examples[f"{group}:{outcome}"].append(f"{name} case {case} {kind}: {detail}")
    report = {
        "backend": originals[0][5], "cases": args.cases, "seed": args.seed,
        "seconds": round(time.monotonic() - started, 1), "counts": dict(sorted(counts.items())), "examples": examples,
    }
    print(json.dumps(report))
    bad = sum(n for key, n in counts.items()
              if key.endswith((":signal", ":hang", ":foreign")) or key == "damaged:changed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
