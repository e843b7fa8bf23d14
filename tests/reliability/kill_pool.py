"""Kills a process stepping a StreamPool over an SQLite store with SIGKILL, over and over; checks what survives.

Usage: python tests/reliability/kill_pool.py --kills N [--seed S] MODEL.tflite

Each round, a writer process opens a pool on the same store file (a small
`max_resident`, so keys are spilled and written in batches all the time) and
steps `--keys` keys of that round in a fixed pseudo-random order, calling
`flush()` every `--flush_every` steps and printing how many steps were flushed.
The parent kills it at a random moment (often mid-transaction), then checks
with a plain SQLite connection that the file is intact (`integrity_check`),
and through `SQLiteStore` that every key of the round holds exactly the state a
serial replay reaches after some number of that key's steps, at least as many
as it had when the last flush returned (`lost` counts keys that went back
further, `wrong` states that match no step of that key), and that the keys of
every earlier round still hold what was verified then. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tflstm.runtime import SQLiteStore, StateError, StreamingModel
from tflstm.runtime.state import pack_state

WRITER = """
import sys
from tflstm.runtime import StreamingModel, StreamPool
sys.path.insert(0, sys.argv[4])
from kill_pool import plan
model_path, store, round_ = sys.argv[1], sys.argv[2], int(sys.argv[3])
keys, flush_every, max_resident = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
model = StreamingModel(model_path)
order, inputs = plan(keys, model.input_depth)
pool = StreamPool(model, store=store, max_resident=max_resident, spill_batch=16)
print("ready", flush=True)
for t, key in enumerate(order):
    pool.step(f"r{round_}-{key}", inputs[t])
    if (t + 1) % flush_every == 0:
        pool.flush()
        print(t + 1, flush=True)
pool.close()
print("done", flush=True)
"""
STEPS = 4000


def plan(keys: int, depth: int, steps: int = STEPS) -> tuple[np.ndarray, np.ndarray]:
    """The writer's key at each step (skewed: some keys step often) and its input."""
    rng = np.random.default_rng(1234)
    order = np.minimum(rng.zipf(1.3, size=steps), keys) - 1
    return order, rng.normal(size=(steps, depth)).astype(np.float32)


def replay(model_path: str, keys: int) -> tuple[list[dict[bytes, int]], np.ndarray]:
    """Per key, its packed state after each of its steps -> that step count (0: zero state); and the plan order."""
    model = StreamingModel(model_path, streams="swap")
    order, inputs = plan(keys, model.input_depth)
    specs = model.metadata.states
    states = [{pack_state(specs, model.stream(key).state): 0} for key in range(keys)]
    for t, key in enumerate(order):
        stream = model.stream(int(key))
        stream.step(inputs[t])
        states[key][pack_state(specs, stream.state)] = len(states[key])
    return states, order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--flush_every", type=int, default=64)
    parser.add_argument("--max_resident", type=int, default=24)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    states, order = replay(args.model, args.keys)
    fingerprint = StreamingModel(args.model).metadata.fingerprint
    results = {"kills": 0, "finished": 0, "corrupt": 0, "unreadable": 0, "lost": 0, "wrong": 0, "earlier_changed": 0,
               "keys_checked": 0, "steps_past_flush_kept": 0}
    verified: dict[str, bytes | None] = {}
    with tempfile.TemporaryDirectory() as folder:
        store_path = Path(folder) / "pool.db"
        for round_ in range(args.kills):
            writer = subprocess.Popen(
                [sys.executable, "-c", WRITER, args.model, str(store_path), str(round_), str(Path(__file__).parent),
                 str(args.keys), str(args.flush_every), str(args.max_resident)],
                stdout=subprocess.PIPE, text=True,
            )
            assert writer.stdout.readline().strip() == "ready"
            time.sleep(float(rng.uniform(0.0, 0.35)))
            writer.send_signal(signal.SIGKILL)
            lines = writer.stdout.read().split()
            writer.wait()
            flushed = max((int(line) for line in lines if line.isdigit()), default=0)
            results["finished"] += "done" in lines
            results["kills"] += 1
            with contextlib.closing(sqlite3.connect(store_path)) as db:
                results["corrupt"] += db.execute("PRAGMA integrity_check").fetchone()[0] != "ok"
            try:
                store = SQLiteStore(store_path)
            except StateError:
                results["unreadable"] += 1
                continue
            with contextlib.closing(store):
                flushed_steps = np.bincount(order[:flushed], minlength=args.keys)
                for key in range(args.keys):
                    name = f"r{round_}-{key}"
                    try:
                        stored = store.read(name)
                    except StateError:
                        results["unreadable"] += 1
                        continue
                    blob = None if stored is None else stored.state
                    if stored is not None and stored.fingerprint != fingerprint:
                        results["wrong"] += 1
                        continue
                    reached = 0 if blob is None else states[key].get(blob)
                    results["keys_checked"] += 1
                    if reached is None:
                        results["wrong"] += 1
                    elif reached < flushed_steps[key]:
                        results["lost"] += 1
                    else:
                        results["steps_past_flush_kept"] += int(reached - flushed_steps[key])
                        verified[name] = blob
                for name, blob in verified.items():
                    if not name.startswith(f"r{round_}-"):
                        stored = store.read(name)
                        results["earlier_changed"] += (None if stored is None else stored.state) != blob
    print(json.dumps(results))
    failed = sum(results[k] for k in ("corrupt", "unreadable", "lost", "wrong", "earlier_changed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
