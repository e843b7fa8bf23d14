"""The server's JSON protocol: request bodies -> checked (key, x) samples, outputs -> JSON values.

Nothing here touches a model or the network, so every refusal is a plain
`RequestError` (HTTP 400) with a message saying what was expected and what was
given. What a sample's `x` must look like beyond "numbers" (its shape, finite
values) is the model's to say (`InputError`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tflstm.runtime.store import Key, check_key


class RequestError(ValueError):
    """A request the server refuses (HTTP 400), with the reason."""


def parse_json(body: bytes) -> dict[str, Any]:
    """A request body -> its JSON object.

    Raises:
        RequestError: not UTF-8 JSON, nested too deeply, or not an object.
    """
    try:
        value = json.loads(body)
    except RecursionError:
        raise RequestError("The body is JSON nested too deeply.") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, int too long to convert
        raise RequestError(f"The body is not valid JSON: {err}.") from None
    if not isinstance(value, dict):
        raise RequestError(f"The body must be a JSON object, got a JSON {_kind(value)}.")
    return value


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def check_fields(body: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """RequestError naming missing or unknown fields of a JSON object."""
    missing = [name for name in required if name not in body]
    unknown = sorted(set(body) - set(required) - set(optional))
    if missing or unknown:
        expected = ", ".join(f'"{name}"' for name in required) + "".join(f' [, "{name}"]' for name in optional)
        problems = ([f"missing {missing}"] if missing else []) + ([f"unknown {unknown}"] if unknown else [])
        raise RequestError(f"Expected an object with {expected}: {'; '.join(problems)}.")


def parse_key(value: Any) -> Key:
    """A JSON key -> a stream key: a string or an integer (JSON has no bytes)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RequestError(f'"key" must be a string or an integer, got a JSON {_kind(value)}: {json.dumps(value)[:80]}.')
    try:
        return check_key(value)
    except (TypeError, ValueError) as err:
        raise RequestError(f'"key" is refused: {err}') from None


def parse_x(value: Any) -> np.ndarray:
    """A JSON array of numbers (nested as the model accepts) -> float32 array; shape is checked by the model."""
    if not isinstance(value, list):
        raise RequestError(f'"x" must be an array of numbers, got a JSON {_kind(value)}.')
    if all(type(v) is float or type(v) is int for v in value):  # one flat time step: the common case
        try:
            with np.errstate(over="ignore"):  # beyond float32: inf, which the model refuses as non-finite
                return np.array(value, np.float32)
        except OverflowError:
            raise RequestError(f'"x" holds an integer beyond any float: {json.dumps(value)[:80]}.') from None
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise RequestError('"x" must be a rectangular array of numbers (its rows differ in length).') from None
    if array.dtype.kind not in "iuf" or _has_bool(value):  # bool, str, null, objects, ints beyond 64 bits
        raise RequestError(f'"x" must hold only numbers, got {json.dumps(value)[:80]}.')
    with np.errstate(over="ignore"):  # beyond float32: inf, which the model refuses as non-finite
        return array.astype(np.float32)


def _has_bool(values: list) -> bool:
    """Whether a rectangular nested list holds a JSON true/false (numpy would take them as 1 and 0)."""
    return any(_has_bool(v) if type(v) is list else type(v) is bool for v in values)


def parse_sample(value: Any, where: str) -> tuple[Key, np.ndarray]:
    """One {"key": ..., "x": [...]} object -> (key, x)."""
    if not isinstance(value, dict):
        raise RequestError(f"{where} must be an object {{\"key\": ..., \"x\": [...]}}, got a JSON {_kind(value)}.")
    check_fields(value, ("key", "x"))
    return parse_key(value["key"]), parse_x(value["x"])


def parse_samples(values: Any, field: str) -> dict[Key, np.ndarray]:
    """A JSON array of samples -> {key: x} in request order; a key named twice is refused."""
    if not isinstance(values, list) or not values:
        raise RequestError(f'"{field}" must be a non-empty array of {{"key": ..., "x": [...]}} objects.')
    samples: dict[Key, np.ndarray] = {}
    for index, value in enumerate(values):
        key, x = parse_sample(value, f'"{field}"[{index}]')
        if key in samples:
            raise RequestError(f'"{field}" names key {key!r} twice; one step per key per request.')
        samples[key] = x
    return samples


def to_json(y: Any) -> Any:
    """A step's output (float array, or dict of them by output name) -> JSON-ready lists."""
    if isinstance(y, dict):
        return {name: to_json(value) for name, value in y.items()}
    return np.asarray(y).tolist()
