"""Durable, checksummed LSTM state files tied to one model's weights.

Layout: the magic `TFLSTMS1`, a 4-byte little-endian header length, a UTF-8 JSON
header (format version, model fingerprint, per state: name, dtype, shape, offset,
size; sha256 of the payload), then the raw payload. Writes go to a temporary file
in the same folder that is flushed, fsynced and renamed over the target, so a
crash leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tflstm.runtime.errors import StateError

MAGIC = b"TFLSTMS1"
STATE_FILE_VERSION = 1


def write_state(path: str | Path, state: Mapping[str, np.ndarray], fingerprint: str) -> None:
    """Writes `state` atomically and durably to `path`."""
    path = Path(path)
    entries, chunks, offset = [], [], 0
    for name in sorted(state):
        array = np.ascontiguousarray(state[name])
        data = array.tobytes()
        entries.append({
            "name": name, "dtype": array.dtype.str, "shape": list(array.shape),
            "offset": offset, "size": len(data),
        })
        chunks.append(data)
        offset += len(data)
    payload = b"".join(chunks)
    header = json.dumps({
        "version": STATE_FILE_VERSION, "fingerprint": fingerprint, "states": entries,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }).encode()
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(MAGIC + len(header).to_bytes(4, "little") + header + payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_state(path: str | Path, fingerprint: str) -> dict[str, np.ndarray]:
    """Reads a state file written for the model with `fingerprint`.

    Raises:
        StateError: the file is damaged, not a state file, or from another model.
    """
    path = Path(path)
    blob = path.read_bytes()
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise StateError(f"{path} is not a tflstm state file (expected magic {MAGIC!r}).")
    start = len(MAGIC) + 4
    length = int.from_bytes(blob[len(MAGIC) : start], "little")
    try:
        header = json.loads(blob[start : start + length])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StateError(f"{path} is damaged: unreadable header ({err}).") from err
    if header.get("version") != STATE_FILE_VERSION:
        raise StateError(
            f"{path} has state file version {header.get('version')!r}; expected {STATE_FILE_VERSION}."
        )
    if header.get("fingerprint") != fingerprint:
        raise StateError(
            f"{path} holds the state of another model (weights fingerprint "
            f"{str(header.get('fingerprint'))[:12]}..., this model {fingerprint[:12]}...)."
        )
    payload = blob[start + length :]
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise StateError(f"{path} is damaged: its checksum does not match its contents.")
    state = {}
    for entry in header["states"]:
        data = payload[entry["offset"] : entry["offset"] + entry["size"]]
        state[entry["name"]] = np.frombuffer(data, dtype=np.dtype(entry["dtype"])).reshape(entry["shape"]).copy()
    return state
