"""The HTTP server: loopback load equals a serial replay, bad requests get 4xx and touch no key, shutdown flushes."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.serve_load import run as load_test
from benchmarks.serve_load import running_server
from tflstm.runtime import SQLiteStore, StreamingModel
from tflstm.runtime.state import unpack_state

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "android_assets" / "digits_step_float32.tflite"
DEPTH = 8


def call(address, method: str, path: str, body=None, raw: bytes | None = None, headers=None) -> tuple[int, dict]:
    """One request on a fresh connection: (status, JSON body)."""
    connection = http.client.HTTPConnection(*address[:2], timeout=30)
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    connection.request(method, path, body=data, headers=headers or {"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, json.loads(payload)


@pytest.fixture(scope="module")
def server():
    with running_server(MODEL, "--max-resident", "8", "--max-body-bytes", "65536") as address:
        yield address


def test_64_clients_equal_a_serial_replay():
    report = load_test(MODEL, clients=64, steps=200)
    assert report["requests"] == 64 * 200
    assert report["non_200"] == 0 and report["keys_mismatched"] == 0, report


def replay(inputs: list[np.ndarray]) -> np.ndarray:
    stream = StreamingModel(MODEL, streams="swap").stream("k")
    return np.stack([stream.step(x) for x in inputs])


BAD_STEPS = [
    ({"key": "victim", "x": [0.0] * 7}, "must be one time step of shape [8]"),
    ({"key": "victim", "x": [0.0] * 7 + [float("nan")]}, "non-finite"),
    ({"key": "victim", "x": [0.0] * 7 + [1e39]}, "non-finite"),
    ({"key": "victim", "x": [0.0] * 7 + [10**400]}, "beyond any float"),
    ({"key": "victim", "x": [[0.0] * 8, [0.0] * 8]}, "must be one time step"),
    ({"key": "victim", "x": [[0.0] * 8, [0.0]]}, "rectangular"),
    ({"key": "victim", "x": [0.0] * 7 + [True]}, "only numbers"),
    ({"key": "victim", "x": [0.0] * 7 + ["1"]}, "only numbers"),
    ({"key": "victim", "x": [0.0] * 7 + [None]}, "only numbers"),
    ({"key": "victim", "x": "0,0,0"}, "array of numbers"),
    ({"key": "victim", "x": {"a": 1}}, "array of numbers"),
    ({"key": "victim"}, 'Expected {"key": ..., "x": [...]}'),
    ({"key": "victim", "x": [0.0] * 8, "extra": 1}, "got the fields"),
    ({"key": 1.5, "x": [0.0] * 8}, '"key" must be a string or an integer'),
    ({"key": True, "x": [0.0] * 8}, '"key" must be a string or an integer'),
    ({"key": None, "x": [0.0] * 8}, '"key" must be a string or an integer'),
    ({"key": ["victim"], "x": [0.0] * 8}, '"key" must be a string or an integer'),
    ({"key": 2**64, "x": [0.0] * 8}, "signed 64 bits"),
    ({"key": "k" * 2000, "x": [0.0] * 8}, "at most 1024 bytes"),
    ({"samples": []}, "non-empty array"),
    ({"samples": [{"key": "victim", "x": [0.0] * 8}, {"key": "victim", "x": [0.0] * 8}]}, "names key 'victim' twice"),
    ({"samples": [{"key": "victim", "x": [0.0] * 8}, {"key": "other", "x": [0.0] * 3}]}, "shape [8]"),
    ({"samples": [{"key": "other", "x": [0.0] * 8}, {"key": "victim", "x": [0.0] * 3}]}, "shape [8]"),
    ({"samples": [{"key": "victim", "x": [0.0] * 8}, "oops"]}, '"samples"[1] must be an object'),
    ({"samples": [{"key": "victim", "x": [0.0] * 8}], "key": "x"}, "unknown ['key']"),
]


def test_bad_requests_get_400_and_touch_no_state(server):
    inputs = [np.random.default_rng(9).normal(size=DEPTH).astype(np.float32) for _ in range(4)]
    got = [call(server, "POST", "/v1/step", {"key": "victim", "x": inputs[0].tolist()})]
    for body, message in BAD_STEPS:
        status, answer = call(server, "POST", "/v1/step", body)
        assert status == 400 and message in answer["error"], (body, status, answer)
    raw_cases = [b"{", b"\xff\xfe\x00", b"[" * 60_000, b"null", b"[1, 2]", b'"text"', b'{"key": "victim", "x": [1e400]}',
                 b'{"key": "victim", "x": [NaN, 0, 0, 0, 0, 0, 0, 0]}', b"1" * 5000, b""]
    for raw in raw_cases:
        status, answer = call(server, "POST", "/v1/step", raw=raw)
        assert status == 400 and answer["error"], (raw[:20], status, answer)
    got.append(call(server, "POST", "/v1/step", {"samples": [{"key": "victim", "x": inputs[1].tolist()}]}))
    got.append(call(server, "POST", "/v1/models/digits_step_float32:predict",
                    {"instances": [{"key": "victim", "x": inputs[2].tolist()}], "signature_name": "serving_default"}))
    got.append(call(server, "POST", "/v1/step", {"key": "victim", "x": inputs[3].tolist()}))
    assert [status for status, _ in got] == [200] * 4
    ys = [got[0][1]["y"], got[1][1]["outputs"][0]["y"], got[2][1]["predictions"][0], got[3][1]["y"]]
    np.testing.assert_array_equal(np.asarray(ys, np.float32), replay(inputs))
    status, answer = call(server, "POST", "/v1/step", {"key": "other", "x": [0.0] * 8})
    assert status == 200  # "other" never moved in the refused all-or-nothing request: this is its first step
    np.testing.assert_array_equal(np.asarray(answer["y"], np.float32), replay([np.zeros(DEPTH, np.float32)])[0])


POISONABLE = ROOT / "build" / "fixtures" / "step_poisonable_float32.tflite"
"""8 features, no normalization: [3e38, -3e38] * 4 makes its state NaN (tests/make_fixtures.py checks it)."""


def test_an_input_that_makes_a_state_nan_resets_only_that_key():
    assert POISONABLE.exists(), f"{POISONABLE} is missing: run `make test`, which makes the fixtures."
    with running_server(POISONABLE) as server:
        _poison_and_check(server)


def _poison_and_check(server: str) -> None:
    x, huge = [0.25] * DEPTH, [3e38, -3e38] * 4
    first = call(server, "POST", "/v1/step", {"key": "poison", "x": x})[1]["y"]
    status, answer = call(server, "POST", "/v1/step", {"key": "poison", "x": huge})
    assert status == 400 and "non-finite" in answer["error"] and "outputs" not in answer
    status, answer = call(server, "POST", "/v1/step", {"samples": [{"key": "poison", "x": huge},
                                                                   {"key": "bystander", "x": x}]})
    assert status == 400 and answer["outputs"] == [{"key": "bystander", "y": first}]  # its first step stood
    assert call(server, "POST", "/v1/step", {"key": "poison", "x": x})[1]["y"] == first  # from the zero state


def test_other_refusals(server):
    cases = [
        ("GET", "/v1/nothing", None, 404, "Not Found"),
        ("GET", "/v1/step", None, 405, "Method Not Allowed"),
        ("POST", "/v1/models/other:predict", {"instances": []}, 404, "this server serves 'digits_step_float32'"),
        ("GET", "/v1/models/other", None, 404, "not found"),
        ("POST", "/v1/models/digits_step_float32:predict", {"instances": [{"key": "a", "x": [0.0] * 8}],
                                                            "signature_name": "train"}, 400, "signature_name"),
        ("POST", "/v1/models/digits_step_float32:predict", {"inputs": {}}, 400, "unknown ['inputs']"),
        ("POST", "/v1/reset", {"key": 1.0}, 400, "string or an integer"),
        ("POST", "/v1/remove", {}, 400, "missing ['key']"),
    ]
    for method, path, body, status, message in cases:
        got, answer = call(server, method, path, body)
        assert got == status and message in answer["error"], (path, got, answer)
    status, answer = call(server, "POST", "/v1/step", raw=b"{" + b" " * 70_000 + b"}")
    assert status == 413 and "at most 65536 bytes" in answer["error"]
    with socket.create_connection(server[:2], timeout=30) as sock:  # refused by the HTTP parser, before the app
        sock.sendall(b"POST /v1/step HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n{}")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")


def test_chunked_bodies_are_limited_too(server):
    with socket.create_connection(server[:2], timeout=30) as sock:
        chunk = b"x" * 40_000
        sock.sendall(b"POST /v1/step HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2 + b"0\r\n\r\n")
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413") and b"at most 65536 bytes" in answer


def read_response(sock: socket.socket) -> bytes:
    """One HTTP response: the headers, then as many body bytes as Content-Length says."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or b"\r\n\r\n"
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next((line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0))
    while len(body) < length:
        more = sock.recv(65536)
        if not more:
            break
        body += more
    return head + b"\r\n\r\n" + body


def test_garbage_on_the_wire_does_not_hurt_the_server(server):
    for garbage in (b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST /v1/step HTTP/1.1\r\nContent-Length: 5\r\n\r\n{"):
        with socket.create_connection(server[:2], timeout=30) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            sock.recv(65536)
    status, answer = call(server, "GET", "/v1/health")
    assert status == 200 and answer["status"] == "ok"


def test_reset_remove_and_info(server):
    x = [0.5] * DEPTH
    first = call(server, "POST", "/v1/step", {"key": 42, "x": x})[1]["y"]
    assert call(server, "POST", "/v1/step", {"key": 42, "x": x})[1]["y"] != first
    assert call(server, "POST", "/v1/step", {"key": "42", "x": x})[1]["y"] == first  # another key
    assert call(server, "POST", "/v1/reset", {"key": 42}) == (200, {"key": 42, "reset": True})
    assert call(server, "POST", "/v1/step", {"key": 42, "x": x})[1]["y"] == first
    assert call(server, "POST", "/v1/remove", {"key": 42}) == (200, {"key": 42, "removed": True})
    assert call(server, "POST", "/v1/step", {"key": 42, "x": x})[1]["y"] == first
    status, info = call(server, "GET", "/v1/model")
    assert status == 200 and info["input"]["shape"] == [DEPTH] and info["state_bytes"] == 1536
    assert info["fingerprint"] == StreamingModel(MODEL).metadata.fingerprint and info["pool"]["max_resident"] == 8
    assert call(server, "GET", "/v1/models/digits_step_float32")[1]["model_version_status"][0]["state"] == "AVAILABLE"
    assert call(server, "POST", "/v1/flush")[0] == 200


def test_shutdown_flushes_and_a_restart_resumes_every_key(tmp_path):
    store = tmp_path / "states.db"
    rng = np.random.default_rng(3)
    inputs = {key: rng.normal(size=(6, DEPTH)).astype(np.float32) for key in ("a", "b", 7)}
    got = {key: [] for key in inputs}
    for half in (slice(0, 3), slice(3, 6)):
        with running_server(MODEL, "--store", str(store), "--max-resident", "2", "--flush-interval", "3600") as address:
            for t in range(half.start, half.stop):
                for key, xs in inputs.items():
                    status, answer = call(address, "POST", "/v1/step", {"key": key, "x": xs[t].tolist()})
                    assert status == 200
                    got[key].append(answer["y"])
        # running_server sent SIGTERM and waited: the states of all three keys must be in the store now
        with contextlib.closing(SQLiteStore(store)) as opened:
            stored = {key: unpack_state(StreamingModel(MODEL).metadata.states, opened.read(key).state) for key in inputs}
        for key, xs in inputs.items():
            stream = StreamingModel(MODEL, streams="swap").stream(key)
            for x in xs[: half.stop]:
                stream.step(x)
            for name, value in stream.state.items():
                np.testing.assert_array_equal(stored[key][name], value)
    for key, xs in inputs.items():
        np.testing.assert_array_equal(np.asarray(got[key], np.float32), replay(list(xs)))


def test_cli_errors_are_one_line(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite" * 100)
    for args, message in (([str(ROOT / "missing.tflite")], "error: Cannot read the model file"),
                          ([str(MODEL), "--port", "70000"], "--port: expected a port 0-65535"),
                          ([str(MODEL), "--max-resident", "0"], "error: `max_resident` must be an int >= 1"),
                          ([str(MODEL), "--store", str(junk)], "error: The state store"),
                          ([str(MODEL), "--idle-ttl", "nan"], "--idle-ttl: expected seconds > 0")):
        done = subprocess.run([sys.executable, "-m", "tflstm.serve", "--port", "0", *args], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)


def test_a_store_in_use_is_refused(tmp_path):
    store = tmp_path / "states.db"
    with running_server(MODEL, "--store", str(store)) as address:
        done = subprocess.run([sys.executable, "-m", "tflstm.serve", str(MODEL), "--port", "0", "--store", str(store)],
                              capture_output=True, text=True, timeout=60)
        assert call(address, "GET", "/v1/health")[0] == 200
    assert done.returncode == 2 and "in use by another process" in done.stderr
