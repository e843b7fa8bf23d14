"""Kills a process with SIGKILL in the middle of saving LSTM state, over and over; checks nothing is lost.

Usage: python tests/reliability/kill_saves.py --kills N [--seed S] MODEL.tflite

A writer process steps a stream and saves its state to one file in a loop,
writing after each save the step count it saved. The parent kills it at a
random moment, then checks that the state file loads (never a StateError) and
holds the state of a step the writer reached, that the next save leaves no
temporary file behind, and that the file keeps its mode. `killed_while_writing`
counts the kills that left a temporary file (the writer died mid-save). Prints
one JSON line.
"""

from __future__ import annotations

import argparse
import json
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tflstm.runtime import StateError, StreamingModel

WRITER = """
import sys, numpy as np
from tflstm.runtime import StreamingModel
model = StreamingModel(sys.argv[1])
inputs = np.random.default_rng(0).normal(size=(64, model.input_depth)).astype(np.float32)
step = 0
print("ready", flush=True)
while True:
    model.step(inputs[step % 64])
    step += 1
    model.save_state(sys.argv[2])
    print(step, flush=True)
"""


def expected_states(path: str, steps: int) -> list[dict[str, np.ndarray]]:
    """The writer's state after each of `steps` steps (index k: after k + 1 steps)."""
    model = StreamingModel(path)
    inputs = np.random.default_rng(0).normal(size=(64, model.input_depth)).astype(np.float32)
    states = []
    for step in range(steps):
        model.step(inputs[step % 64])
        states.append(model.state)
    return states


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    reader = StreamingModel(args.model)
    states = expected_states(args.model, 4000)
    results = {"kills": 0, "unreadable": 0, "wrong_state": 0, "temporaries_left": 0, "mode_changed": 0,
               "killed_while_writing": 0}
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "stream.state"
        reader.save_state(target)
        target.chmod(0o640)
        for _ in range(args.kills):
            previous = reader.state
            writer = subprocess.Popen([sys.executable, "-c", WRITER, args.model, str(target)],
                                      stdout=subprocess.PIPE, text=True)
            assert writer.stdout.readline().strip() == "ready"
            saved = 0
            deadline = time.monotonic() + float(rng.uniform(0.005, 0.2))
            while time.monotonic() < deadline:
                line = writer.stdout.readline().strip()
                if line:
                    saved = int(line)
            writer.send_signal(signal.SIGKILL)
            rest = writer.stdout.read().split()
            writer.wait()
            saved = int(rest[-1]) if rest else saved
            results["kills"] += 1
            results["mode_changed"] += stat.S_IMODE(target.stat().st_mode) != 0o640
            try:
                reader.load_state(target)
            except StateError:
                results["unreadable"] += 1
                continue
            state = reader.state
            # The file holds the last completed save, or the one in flight (one step on), or,
            # when no save completed, what it held before.
            candidates = [states[k] for k in (saved - 1, saved) if 0 <= k < len(states)] + [previous] * (saved == 0)
            results["wrong_state"] += not any(all(np.array_equal(state[n], c[n]) for n in state) for c in candidates)
            results["killed_while_writing"] += any(p.name != target.name for p in Path(folder).iterdir())
            reader.save_state(target)  # removes what the killed writer left
            results["temporaries_left"] += any(p.name != target.name for p in Path(folder).iterdir())
    print(json.dumps(results))
    failed = sum(v for k, v in results.items() if k not in ("kills", "killed_while_writing"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
