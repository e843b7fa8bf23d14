"""Durable, checksummed LSTM state files tied to one model's weights.

One format for Python and Android (`android_assets/TflstmStateFile.java` reads and
writes the same bytes). Layout, little-endian throughout:

    magic       8 bytes   b"TFLSTMS2" (the last byte is the format version)
    header_size u32
    header      fingerprint (u16 length + ASCII), state count (u16), then per
                state: name (u16 length + UTF-8), TensorType code (u8: 0 float32,
                9 int8, 7 int16), rank (u8), dims (u32 each)
    payload     the states' values in header order, C order
    sha256      32 bytes over every byte before it

Writes go to a temporary file in the same folder (named after the target and the
writing process), flushed, fsynced and renamed over the target, then the folder
is fsynced: a crash leaves the old file or the new one, never a torn one. A save
removes the temporary files that dead processes left for the same target, and
keeps the mode of the file it replaces.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tflstm.flatbuf import TENSOR_DTYPES
from tflstm.runtime.errors import StateError

MAGIC_PREFIX = b"TFLSTMS"
FORMAT_VERSION = 2
MAGIC = MAGIC_PREFIX + str(FORMAT_VERSION).encode()
_DIGEST_SIZE = 32
_TYPE_CODES = {name: code for code, name in TENSOR_DTYPES.items() if name in ("float32", "int8", "int16")}
_TYPE_NAMES = {code: name for name, code in _TYPE_CODES.items()}


def encode_state(state: Mapping[str, np.ndarray], fingerprint: str) -> bytes:
    """The state file bytes of `state` (in mapping order) for the model with `fingerprint`."""
    header = [_text(fingerprint, "ascii", "fingerprint"), struct.pack("<H", len(state))]
    payload = []
    for name, value in state.items():
        array = np.asarray(value)
        code = _TYPE_CODES.get(array.dtype.name)
        if code is None:
            raise StateError(f"State {name!r} has dtype {array.dtype}; state files hold {sorted(_TYPE_CODES)}.")
        header += [_text(name, "utf-8", "state name"), struct.pack("<BB", code, array.ndim)]
        header += [struct.pack(f"<{array.ndim}I", *array.shape)]
        payload.append(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())
    head = b"".join(header)
    body = MAGIC + struct.pack("<I", len(head)) + head + b"".join(payload)
    return body + hashlib.sha256(body).digest()


def decode_state(blob: bytes, fingerprint: str, source: str = "the state file") -> dict[str, np.ndarray]:
    """Parses state file bytes written for the model with `fingerprint`.

    Raises:
        StateError: not a state file, another version, damaged, or another model's.
    """
    magic = blob[: len(MAGIC)]
    if not magic.startswith(MAGIC_PREFIX) or len(magic) < len(MAGIC):
        raise StateError(f"{source} is not a tflstm state file (expected it to start with {MAGIC!r}).")
    if magic != MAGIC:
        raise StateError(
            f"{source} has state file format {magic[len(MAGIC_PREFIX):].decode(errors='replace')!r}; this tflstm "
            f"reads format {FORMAT_VERSION}. Save the state again with the tflstm version that reads the model."
        )
    if len(blob) < len(MAGIC) + 4 + _DIGEST_SIZE or hashlib.sha256(blob[:-_DIGEST_SIZE]).digest() != blob[-_DIGEST_SIZE:]:
        raise StateError(f"{source} is damaged: its checksum does not match its contents.")
    try:
        return _parse(blob[:-_DIGEST_SIZE], fingerprint, source)
    except (struct.error, UnicodeDecodeError, ValueError) as err:
        if isinstance(err, StateError):
            raise
        raise StateError(f"{source} is damaged: {err}.") from err


def _parse(body: bytes, fingerprint: str, source: str) -> dict[str, np.ndarray]:
    (header_size,) = struct.unpack_from("<I", body, len(MAGIC))
    position = len(MAGIC) + 4
    end = position + header_size
    if end > len(body):
        raise ValueError(f"its header claims {header_size} bytes, more than the file holds")

    def read(fmt: str) -> tuple:
        nonlocal position
        values = struct.unpack_from("<" + fmt, body, position)
        position += struct.calcsize("<" + fmt)
        if position > end:
            raise ValueError("its header is shorter than its entries")
        return values

    def text(encoding: str) -> str:
        nonlocal position
        (length,) = read("H")
        value = body[position : position + length].decode(encoding)
        position += length
        if position > end:
            raise ValueError("its header is shorter than its entries")
        return value

    saved = text("ascii")
    if saved != fingerprint:
        raise StateError(
            f"{source} holds the state of another model (weights fingerprint {saved[:12]}..., "
            f"this model {fingerprint[:12]}...)."
        )
    (count,) = read("H")
    entries = []
    for _ in range(count):
        name = text("utf-8")
        code, rank = read("BB")
        if code not in _TYPE_NAMES:
            raise ValueError(f"state {name!r} has type code {code}")
        entries.append((name, np.dtype(_TYPE_NAMES[code]).newbyteorder("<"), read(f"{rank}I")))
    if position != end:
        raise ValueError("its header has bytes after its entries")
    state, offset = {}, end
    for name, dtype, shape in entries:
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offset + size > len(body):
            raise ValueError(f"state {name!r} runs past the end of the payload")
        state[name] = np.frombuffer(body, dtype=dtype, count=size // dtype.itemsize, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))
        offset += size
    if offset != len(body):
        raise ValueError(f"it has {len(body) - offset} bytes after its payload")
    if len(state) != count:
        raise ValueError("it names a state twice")
    return state


def write_state(path: str | Path, state: Mapping[str, np.ndarray], fingerprint: str) -> None:
    """Writes `state` atomically and durably to `path`.

    Raises:
        StateError: the file cannot be written (chained to the OS error).
    """
    path = Path(path)
    data = encode_state(state, fingerprint)
    try:
        _remove_stale_temporaries(path)
        temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as err:
        raise StateError(f"Cannot write the state file {path}: {err.strerror or err}.") from err
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                os.fchmod(out.fileno(), path.stat().st_mode & 0o7777)
            except FileNotFoundError:
                pass  # a new file: the mode open() gave it (0o666 less the umask)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except BaseException as err:
        temporary.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise StateError(f"Cannot write the state file {path}: {err.strerror or err}.") from err
        raise


def read_state(path: str | Path, fingerprint: str) -> dict[str, np.ndarray]:
    """Reads a state file written for the model with `fingerprint`.

    Raises:
        StateError: the file is missing or unreadable (chained to the OS error),
            damaged, not a state file, of another format or from another model.
    """
    try:
        blob = Path(path).read_bytes()
    except OSError as err:
        raise StateError(f"Cannot read the state file {path}: {err.strerror or err}.") from err
    return decode_state(blob, fingerprint, str(path))


def _remove_stale_temporaries(path: Path) -> None:
    """Deletes `.<name>.<pid>-<token>.tmp` files of `path` whose writing process is gone."""
    if not path.parent.is_dir():
        return
    for leftover in path.parent.glob(f".{path.name}.*-*.tmp"):
        pid = leftover.name[len(path.name) + 2 :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _text(value: str, encoding: str, what: str) -> bytes:
    data = value.encode(encoding)
    if len(data) > 0xFFFF:
        raise StateError(f"The {what} is too long for a state file: {len(data)} bytes (at most 65535).")
    return struct.pack("<H", len(data)) + data
