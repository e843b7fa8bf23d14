"""Benchmarks keyed streams: StreamPool with an SQLite store, threads, memory per stream, the HTTP server.

Sections, on one model (default: the digits float32 step model, 1,536 state bytes per key):

  churn      `--keys` keys stepped `--passes` times each (in a shuffled order per pass) through a
             pool of `--max_resident` slots on an SQLite store: steps/s, RSS of the empty pool, with
             max_resident keys resident (the resident budget) and at the end, store bytes per key;
             a sample of keys is checked against a serial replay
  resident   an all-resident pool's step rate against a plain `run_step` loop keeping each key's
             state in a dict, one thread, measured alternately in blocks
  threads    pool throughput with 1, 2 and 8 threads, each stepping its own keys
  idle       bytes per idle stream: resident (own-interpreter slot and swap slot, RSS), in the store
  server     `python -m tflstm.serve` under `--clients` loopback clients (benchmarks.serve_load):
             closed loop (saturation), then open loop at each `--rate` (requests/s per client)

Writes results.json and results.md into --out and prints the table. Exits non-zero if a
correctness check failed (outputs against a replay, non-200 answers); speed and memory
targets are reported, not asserted.

    python -m benchmarks.pool_bench --out build/bench-pool                  # full: about 4 minutes
    python -m benchmarks.pool_bench --suite quick --out build/bench-pool-q  # CI smoke run
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from benchmarks import serve_load
from benchmarks.timing import measure_alternating, rss_kib
from tflstm.runtime import SQLiteStore, StreamingModel, StreamPool
from tflstm.runtime.state import PackedLayout, state_nbytes

ROOT = Path(__file__).resolve().parent.parent
_MODEL = flags.DEFINE_string("model", str(ROOT / "android_assets" / "digits_step_float32.tflite"), "Step model.")
_SUITE = flags.DEFINE_enum("suite", "full", ["quick", "full"], "quick: small sizes (CI smoke run).")
_OUT = flags.DEFINE_string("out", "build/bench-pool", "Output folder.")
_SECTIONS = flags.DEFINE_list("sections", ["churn", "resident", "threads", "idle", "server"], "Sections to run.")
_RATES = flags.DEFINE_multi_float("rate", [10.0, 40.0], "Open-loop requests per second per server client: one run "
                                  "per --rate.", lower_bound=0.001)

SUITES = {
    "full": {"keys": 100_000, "max_resident": 1000, "passes": 2, "resident_keys": 64, "resident_steps": 20_000,
             "thread_steps": 40_000, "idle_keys": 5000, "clients": 64, "client_steps": 1000, "checked": 200},
    "quick": {"keys": 2000, "max_resident": 100, "passes": 2, "resident_keys": 64, "resident_steps": 2000,
              "thread_steps": 2000, "idle_keys": 500, "clients": 16, "client_steps": 50, "checked": 50},
}
TARGETS = {"rss_growth_mib": 50, "store_ratio": 2.0, "resident_ratio": 0.8, "p50_ms": 2.0, "p99_ms": 10.0}


def rss_mib() -> float:
    """Resident memory of this process (Linux), MiB."""
    return rss_kib() / 1024


def inputs_for(depth: int, count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, depth)).astype(np.float32)


def churn(model_path: str, keys: int, max_resident: int, passes: int, checked: int) -> dict:
    """Every key stepped `passes` times through a small pool on SQLite; memory, store size, speed, spot checks."""
    model = StreamingModel(model_path)
    xs = inputs_for(model.input_depth, 1024)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "states.db"
        rss_empty = rss_mib()
        pool = StreamPool(model, store=store, max_resident=max_resident)
        for key in range(max_resident):  # fill the slots: the resident budget
            pool.step(key, xs[key % 1024])
        rss_resident = rss_mib()
        steps, peak = max_resident, rss_resident
        started = time.perf_counter()
        for done in range(passes):
            for key in rng.permutation(keys):
                if done == 0 and key < max_resident:
                    continue  # stepped while filling
                pool.step(int(key), xs[(int(key) + done) % 1024])
                steps += 1
                if steps % 10_000 == 0:
                    peak = max(peak, rss_mib())
        seconds = time.perf_counter() - started
        interpreter_slots = model.interpreter_streams
        pool.close()
        peak = max(peak, rss_mib())
        store_bytes = sum(path.stat().st_size for path in Path(folder).iterdir())
        wrong = check_keys(model_path, store, rng.choice(keys, size=min(checked, keys), replace=False), passes)
    raw = state_nbytes(model.metadata.states)
    return {
        "keys": keys, "max_resident": max_resident, "passes": passes, "steps": steps,
        "steps_per_second": round((steps - max_resident) / seconds, 1),
        "interpreter_slots": interpreter_slots,
        "rss_empty_pool_mib": round(rss_empty, 1), "rss_resident_mib": round(rss_resident, 1),
        "rss_peak_mib": round(peak, 1), "resident_budget_mib": round(rss_resident - rss_empty, 1),
        "rss_growth_after_budget_mib": round(peak - rss_resident, 1),
        "store_bytes_per_key": round(store_bytes / keys, 1), "raw_state_bytes": raw,
        "store_ratio": round(store_bytes / keys / raw, 3), "checked_keys": int(min(checked, keys)), "wrong_keys": wrong,
    }


def check_keys(model_path: str, store: Path, keys: np.ndarray, passes: int) -> int:
    """Keys whose stored state differs from a serial replay of their `passes` steps."""
    replay = StreamingModel(model_path, streams="swap")
    xs = inputs_for(replay.input_depth, 1024)
    layout = PackedLayout(replay.metadata.states)
    opened = SQLiteStore(store)
    try:
        wrong = 0
        for key in keys:
            stream = replay.stream(int(key))
            for done in range(passes):
                stream.step(xs[(int(key) + done) % 1024])
            stored = opened.read(int(key))
            wrong += stored is None or layout.pack(stream.state) != layout.pack(layout.unpack(stored.state))
            replay.remove_stream(int(key))
        return wrong
    finally:
        opened.close()


def resident(model_path: str, keys: int, steps: int) -> dict:
    """All-resident pool vs a plain run_step loop over per-key states, one thread, alternated in blocks."""
    model = StreamingModel(model_path)
    xs = inputs_for(model.input_depth, 1024)
    pool = StreamPool(model, max_resident=max(keys, 1))
    states = {key: model.zero_state() for key in range(keys)}
    run_step = model.run_step

    def pool_step(i: int) -> None:
        pool.step(i % keys, xs[i & 1023])

    def plain_step(i: int) -> None:
        key = i % keys
        _, states[key] = run_step(xs[i & 1023], states[key])

    ours, plain = measure_alternating(pool_step, plain_step, steps, warmup=max(keys * 2, 200))
    modes = f"{model.interpreter_streams} own interpreters, {keys - model.interpreter_streams} swap"
    pool.close()
    return {"keys": keys, "slots": modes, "pool_us": round(ours.median_us, 2), "run_step_us": round(plain.median_us, 2),
            "pool_steps_per_second": round(ours.steps_per_second, 1),
            "run_step_steps_per_second": round(plain.steps_per_second, 1),
            "pool_vs_run_step_rate": round(plain.median_us / ours.median_us, 3)}


def threads(model_path: str, thread_counts: tuple[int, ...], total_steps: int, keys_per_thread: int = 8) -> list[dict]:
    """Steps/s of one pool stepped by N threads at once, each over its own keys."""
    rows = []
    for count in thread_counts:
        model = StreamingModel(model_path)
        xs = inputs_for(model.input_depth, 1024)
        pool = StreamPool(model, max_resident=count * keys_per_thread)
        per_thread = total_steps // count
        barrier = threading.Barrier(count + 1)

        def work(k: int, pool: StreamPool = pool, barrier: threading.Barrier = barrier) -> None:
            keys = [k * keys_per_thread + j for j in range(keys_per_thread)]
            for key in keys:
                pool.step(key, xs[0])
            barrier.wait()
            for i in range(per_thread):
                pool.step(keys[i % keys_per_thread], xs[i & 1023])
            barrier.wait()

        workers = [threading.Thread(target=work, args=(k,)) for k in range(count)]
        for worker in workers:
            worker.start()
        barrier.wait()
        started = time.perf_counter()
        barrier.wait()
        seconds = time.perf_counter() - started
        for worker in workers:
            worker.join()
        rows.append({"threads": count, "keys": count * keys_per_thread, "own_interpreters": model.interpreter_streams,
                     "steps_per_second": round(per_thread * count / seconds, 1)})
        pool.close()
    return rows


def resident_bytes_per_key(model_path: str, streams: str, count: int) -> float:
    """RSS growth per key of a pool holding `count` keys resident (run in a fresh process: see `idle`)."""
    pool = StreamPool(StreamingModel(model_path, streams=streams), max_resident=count)
    x = inputs_for(pool.model.input_depth, 1)[0]
    for key in range(50):  # warm up the allocators
        pool.step(key, x)
    before = rss_mib()
    for key in range(50, count):
        pool.step(key, x)
    grown = (rss_mib() - before) * 2**20 / (count - 50)
    pool.close()
    return grown


def idle(model_path: str, keys: int) -> dict:
    """Bytes per idle stream: resident with an own interpreter, resident in a swap slot, in the store.

    The resident figures come from fresh processes, so memory freed by earlier
    sections cannot hide growth.
    """
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1, maxtasksperchild=1) as workers:
        own = workers.apply(resident_bytes_per_key, (model_path, "interpreter", 150))
        swap = workers.apply(resident_bytes_per_key, (model_path, "swap", keys))
    with tempfile.TemporaryDirectory() as folder:
        model = StreamingModel(model_path)
        with StreamPool(model, store=Path(folder) / "s.db", max_resident=100) as pool:
            x = inputs_for(model.input_depth, 1)[0]
            for key in range(keys):
                pool.step(key, x)
        store_bytes = sum(path.stat().st_size for path in Path(folder).iterdir())
    return {"resident_own_interpreter_bytes": round(own), "resident_swap_bytes": round(swap),
            "stored_bytes": round(store_bytes / keys, 1), "raw_state_bytes": state_nbytes(model.metadata.states),
            "not_resident_memory_bytes": 0}


def server(model_path: str, clients: int, steps: int, rates: list[float]) -> list[dict]:
    """The loopback load test, closed loop, then open loop at each rate per client."""
    return [serve_load.run(model_path, clients, steps, rate) for rate in (None, *rates)]


def markdown(results: dict) -> str:
    lines = [f"Pool benchmark on {results['machine']}", ""]
    if "churn" in results:
        c = results["churn"]
        lines += [
            f"**{c['keys']:,} keys x {c['passes']} passes through max_resident={c['max_resident']:,} on SQLite** "
            f"({c['interpreter_slots']} slots with own interpreters): {c['steps_per_second']:,.0f} steps/s; RSS empty pool "
            f"{c['rss_empty_pool_mib']} MiB, {c['max_resident']:,} resident {c['rss_resident_mib']} MiB (budget "
            f"{c['resident_budget_mib']} MiB), peak {c['rss_peak_mib']} MiB: growth beyond the budget "
            f"{c['rss_growth_after_budget_mib']} MiB (target <= {TARGETS['rss_growth_mib']}); store "
            f"{c['store_bytes_per_key']:,.0f} B/key = {c['store_ratio']}x the raw {c['raw_state_bytes']:,} B (target <= "
            f"{TARGETS['store_ratio']}); {c['wrong_keys']} of {c['checked_keys']} checked keys wrong.", ""]
    if "resident" in results:
        r = results["resident"]
        lines += [f"**All-resident pool, one thread, {r['keys']} keys ({r['slots']})**: pool.step {r['pool_us']} us vs "
                  f"plain run_step loop {r['run_step_us']} us: pool rate = {r['pool_vs_run_step_rate']}x the loop's "
                  f"(target >= {TARGETS['resident_ratio']}).", ""]
    if "threads" in results:
        lines += ["| threads | keys | own interpreters | steps/s |", "|---:|---:|---:|---:|"]
        lines += [f"| {t['threads']} | {t['keys']} | {t['own_interpreters']} | {t['steps_per_second']:,.0f} |"
                  for t in results["threads"]]
        lines.append("")
    if "idle" in results:
        i = results["idle"]
        lines += [f"**Bytes per idle stream**: resident with its own interpreter {i['resident_own_interpreter_bytes']:,} "
                  f"(RSS, includes the model file mapping), resident in a swap slot {i['resident_swap_bytes']:,}, "
                  f"not resident 0 in memory and {i['stored_bytes']:,.0f} in the store (raw state {i['raw_state_bytes']:,}).",
                  ""]
    if "server" in results:
        lines += ["| server load | clients x steps | req/s | p50 ms | p90 ms | p99 ms | server CPU us/req | errors | keys wrong |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s in results["server"]:
            mode = ("closed loop" if s["rate_per_client"] is None
                    else f"open loop, {s['rate_per_client']:g}/s per client ({s['clients'] * s['rate_per_client']:,.0f}/s)")
            lines.append(f"| {mode} | {s['clients']} x {s['steps']} | {s['requests_per_second']:,.0f} | {s['p50_ms']} | "
                         f"{s['p90_ms']} | {s['p99_ms']} | {s['server_cpu_us_per_request']} | {s['non_200']} | "
                         f"{s['keys_mismatched']} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    del argv
    suite = SUITES[_SUITE.value]
    model_path = _MODEL.value
    results: dict = {"machine": {"date": time.strftime("%Y-%m-%d %H:%M"), "model": Path(model_path).name,
                                 "suite": _SUITE.value, "cpus": len(os.sched_getaffinity(0))}}
    sections = _SECTIONS.value
    if "churn" in sections:
        results["churn"] = churn(model_path, suite["keys"], suite["max_resident"], suite["passes"], suite["checked"])
    if "resident" in sections:
        results["resident"] = resident(model_path, suite["resident_keys"], suite["resident_steps"])
    if "threads" in sections:
        results["threads"] = threads(model_path, (1, 2, 8), suite["thread_steps"])
    if "idle" in sections:
        results["idle"] = idle(model_path, suite["idle_keys"])
    if "server" in sections:
        results["server"] = server(model_path, suite["clients"], suite["client_steps"], _RATES.value)
    out = Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    text = markdown(results)
    (out / "results.md").write_text(text + "\n")
    print(text)
    failed = results.get("churn", {}).get("wrong_keys", 0) + sum(
        s["non_200"] + s["keys_mismatched"] for s in results.get("server", []))
    if failed:
        print(f"FAILED: {failed} wrong keys or error answers", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    app.run(main)
