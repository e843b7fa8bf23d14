"""Loopback load test of `tflstm.serve`: concurrent keep-alive clients, each stepping its own key.

Starts `python -m tflstm.serve MODEL --port 0` in a child process, then runs
`--clients` asyncio clients in this process, each over its own connection,
sending `--steps` POST /v1/step requests for its key (inputs fixed by a seed).
Every response must be 200, and every key's outputs must equal a serial replay
of its inputs through `StreamingModel` (bit for bit: JSON carries the float32
values exactly). Reports requests/s and latency percentiles.

Closed loop (default): each client sends its next request when the previous
answer arrives, so the server is saturated and latency is mostly queueing
(64 clients / requests per second). With `--rate R` each client sends R
requests per second on a schedule (open loop, random phase), and latency is
measured from the scheduled send time, so a slow server cannot hide its
backlog. Prints one JSON line.

    python -m benchmarks.serve_load --clients 64 --steps 1000 android_assets/digits_step_float32.tflite
    python -m benchmarks.serve_load --clients 64 --steps 1000 --rate 25 android_assets/digits_step_float32.tflite
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tflstm.runtime import StreamingModel


@contextlib.contextmanager
def running_server(model: str | Path, *extra: str) -> Iterator[tuple[str, int, int]]:
    """A `python -m tflstm.serve` child on a free loopback port: yields (host, port, pid); SIGTERM at exit.

    Raises:
        RuntimeError: the server did not start (its output is in the message).
    """
    command = [sys.executable, "-m", "tflstm.serve", str(model), "--host", "127.0.0.1", "--port", "0", *extra]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = server.stdout.readline()
        if "listening on http://" not in line:
            server.kill()
            raise RuntimeError(f"the server did not start: {line}{server.stderr.read()[-2000:]}")
        host, port = line.split("http://", 1)[1].split()[0].rsplit(":", 1)
        yield host, int(port), server.pid
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request(path: str, body: dict) -> bytes:
    """An HTTP/1.1 keep-alive POST of a JSON body."""
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: loopback\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    return head.encode() + data


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> tuple[int, bytes]:
    """Sends one request, returns (status, body) of its response."""
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


async def client(host: str, port: int, requests: list[bytes], rate: float | None, phase: float,
                 start: float) -> tuple[list[float], list[tuple[int, bytes]]]:
    """Sends `requests` in order over one connection; returns latencies (s) and (status, body) answers."""
    reader, writer = await asyncio.open_connection(host, port)
    latencies, answers = [], []
    loop_time = time.perf_counter
    try:
        for index, data in enumerate(requests):
            if rate is None:
                sent = loop_time()
            else:
                sent = start + phase + index / rate
                delay = sent - loop_time()
                if delay > 0:
                    await asyncio.sleep(delay)
            answers.append(await exchange(reader, writer, data))
            latencies.append(loop_time() - sent)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return latencies, answers


async def load(host: str, port: int, requests: dict[object, list[bytes]], rate: float | None) -> tuple[float, dict]:
    """Runs one client per key at once; returns (seconds, key -> (latencies, answers))."""
    rng = np.random.default_rng(0)
    start = time.perf_counter() + 0.05
    tasks = {key: client(host, port, reqs, rate, float(rng.uniform(0, 1 / rate)) if rate else 0.0, start)
             for key, reqs in requests.items()}
    results = await asyncio.gather(*tasks.values())
    return time.perf_counter() - start, dict(zip(tasks, results))


def key_inputs(clients: int, steps: int, depth: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Each client's key and its inputs, float32 [steps, depth]."""
    rng = np.random.default_rng(seed)
    return {f"client-{c}": rng.normal(size=(steps, depth)).astype(np.float32) for c in range(clients)}


def mismatches(model: str | Path, inputs: dict[str, np.ndarray], answers: dict) -> int:
    """Keys whose outputs differ from a serial replay (or whose answers are not all 200 with the key's outputs)."""
    replay = StreamingModel(model, streams="swap")
    wrong = 0
    for key, xs in inputs.items():
        expected = np.stack([replay.stream(key).step(x) for x in xs])
        got = answers[key]
        if any(status != 200 for status, _ in got):
            wrong += 1
            continue
        bodies = [json.loads(body) for _, body in got]
        ys = np.asarray([body["y"] for body in bodies], np.float32)
        wrong += not (all(body["key"] == key for body in bodies) and np.array_equal(ys, expected))
    return wrong


def run(model: str | Path, clients: int, steps: int, rate: float | None = None, server_args: tuple[str, ...] = ()) -> dict:
    """The whole test: server up, load, replay check; returns the report."""
    depth = StreamingModel(model).input_depth
    inputs = key_inputs(clients, steps, depth)
    requests = {key: [request("/v1/step", {"key": key, "x": x.tolist()}) for x in xs] for key, xs in inputs.items()}
    with running_server(model, *server_args) as (host, port, pid):
        server_cpu, client_cpu = cpu_seconds(pid), time.process_time()
        seconds, results = asyncio.run(load(host, port, requests, rate))
        server_cpu, client_cpu = cpu_seconds(pid) - server_cpu, time.process_time() - client_cpu
    latencies = np.concatenate([r[0] for r in results.values()]) * 1e3
    answers = {key: r[1] for key, r in results.items()}
    return {
        "clients": clients, "steps": steps, "rate_per_client": rate, "requests": int(latencies.size),
        "seconds": round(seconds, 3), "requests_per_second": round(latencies.size / seconds, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 3), "p90_ms": round(float(np.percentile(latencies, 90)), 3),
        "p99_ms": round(float(np.percentile(latencies, 99)), 3), "max_ms": round(float(latencies.max()), 3),
        "server_cpu_us_per_request": round(server_cpu / latencies.size * 1e6, 1),
        "client_cpu_us_per_request": round(client_cpu / latencies.size * 1e6, 1),
        "non_200": sum(status != 200 for got in answers.values() for status, _ in got),
        "keys_mismatched": mismatches(model, inputs, answers),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rate", type=float, help="requests per second per client (default: closed loop)")
    args = parser.parse_args(argv)
    report = run(args.model, args.clients, args.steps, args.rate)
    print(json.dumps(report))
    return 1 if report["non_200"] or report["keys_mismatched"] else 0


if __name__ == "__main__":
    sys.exit(main())
