"""Caller arrays <-> a step model's input and output tensors.

`Inputs` checks one time step's features and turns them into what the input
tensor holds (preprocess, normalization, quantization); `Outputs` turns the
output tensors back into float arrays (dequantization, postprocess). Both say
when nothing needs converting (`fast`), so the hot path can copy directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tflstm.format import TensorSpec
from tflstm.runtime.errors import InputError

Output = np.ndarray | dict[str, np.ndarray]
"""One step's result: float32 output array, or a dict by output name for multi-output models."""


def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """float32 -> the integer dtype of `spec` (round, add the zero point, saturate)."""
    info = np.iinfo(spec.dtype)
    q = np.round(x / np.float32(spec.scale)) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def dequantize(y: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The integer values of `spec` -> float32 (scale * (q - zero_point))."""
    return (y.astype(np.float32) - np.float32(spec.zero_point)) * np.float32(spec.scale)


Shapes = dict[int, tuple[tuple[int, ...], tuple[int, ...]]]
"""Accepted input rank -> (accepted shape, axes of the tensor's shape it leaves out). The
outputs leave out the same size-1 axes."""


def step_input_shapes(shape: tuple[int, ...]) -> Shapes:
    """A step model's input, e.g. [1, 1, depth]: the shape with any number of its leading 1s dropped."""
    leading_ones = next((k for k, d in enumerate(shape) if d != 1), len(shape))
    return {len(shape) - k: (shape[k:], tuple(range(k))) for k in range(leading_ones + 1)}


def is_multi_step(shape: tuple[int, ...]) -> bool:
    """True for the input of a batch-1 model taking several time steps per invoke, [k, 1, depth] with k > 1
    (a chunk model, or a sequence model)."""
    return len(shape) == 3 and shape[0] > 1 and shape[1] == 1


def multi_step_input_shapes(shape: tuple[int, ...]) -> Shapes:
    """A [k, 1, depth] input: x [k, depth] (the batch axis dropped) or the tensor's own shape."""
    return {2: ((shape[0], shape[2]), (1,)), 3: (shape, ())}


def drop_axes(y: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """`y` without `axes` if they all have size 1 in it (the axes the caller's input left out), else `y`."""
    if not axes or any(y.shape[axis] != 1 for axis in axes if axis < y.ndim):
        return y
    return y.reshape([d for axis, d in enumerate(y.shape) if axis not in axes])


class Inputs:
    """One feature input: accepted shapes and conversion to the tensor's dtype.

    Args:
        spec: the feature input tensor, time-major [time, batch, depth]: e.g.
            float32 [1, 1, depth] for a step model, [k, 1, depth] for a chunk
            model taking k time steps per call.
        normalization: {"mean": [...], "std": [...]} per feature, or None.
        preprocess: stateless callable applied to every input first, or None.
        allow_nonfinite: let NaN and infinite features through (they poison the
            LSTM state until a reset). Default: refused with `InputError`.
    """

    def __init__(
        self,
        spec: TensorSpec,
        normalization: dict[str, list[float]] | None,
        preprocess: Callable[[Any], Any] | None,
        allow_nonfinite: bool = False,
    ) -> None:
        self.spec = spec
        self.allow_nonfinite = allow_nonfinite
        self.depth = spec.shape[-1]
        self._preprocess = preprocess
        self.mean = None if normalization is None else np.asarray(normalization["mean"], np.float32)
        """float32 [depth] means to subtract, or None."""
        self.std = None if normalization is None else np.asarray(normalization["std"], np.float32)
        """float32 [depth] standard deviations to divide by, or None."""
        self.fast = spec.scale is None and preprocess is None and spec.dtype == "float32"
        """True when a float32 array of an accepted shape goes into the tensor as it is, or normalized
        in place (`(x - mean) / std`, the same float32 operations as `convert`)."""
        multi_step = is_multi_step(spec.shape)
        self.shapes = multi_step_input_shapes(spec.shape) if multi_step else step_input_shapes(spec.shape)
        """Accepted input rank -> (shape, axes the outputs drop as the input did)."""
        self.what = f"{spec.shape[0]} time steps" if multi_step else "one time step"

    def describe_shapes(self) -> str:
        """The accepted shapes, for messages: "[3] or [1, 3] or [1, 1, 3]"."""
        return " or ".join(str(list(self.shapes[rank][0])) for rank in sorted(self.shapes))

    def convert(self, x: np.ndarray) -> np.ndarray:
        """Float features -> the tensor's dtype: finiteness check, normalization, quantization."""
        if x.dtype != np.float32:
            if not np.issubdtype(x.dtype, np.floating):
                raise InputError(f"`x` must hold floats, got {x.dtype}.")
            x = x.astype(np.float32)
        if not self.allow_nonfinite:
            check_finite(x)
        if self.mean is not None:
            with np.errstate(over="ignore"):  # refused just below
                x = (x - self.mean) / self.std
            if not self.allow_nonfinite:
                check_finite_normalized(x)
        if self.spec.scale is not None:
            x = quantize(x, self.spec)
        return x

    def prepare(self, x: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        """One call's input -> (array of the tensor's shape and dtype, axes the outputs drop).

        Raises:
            InputError: a shape other than `describe_shapes()`, a dtype that is not
                float, NaN/Inf (unless allowed), a ragged list or a masked array.
        """
        if self._preprocess is not None:
            x = self._preprocess(x)
        x = as_array(x)
        accepted = self.shapes.get(x.ndim)
        if accepted is None or x.shape != accepted[0]:
            raise InputError(f"`x` must be {self.what} of shape {self.describe_shapes()}, got {list(x.shape)}.")
        return self.convert(x).reshape(self.spec.shape), accepted[1]

    def prepare_rows(self, xs: Sequence[Any]) -> np.ndarray:
        """One time step for each of several row streams -> converted [len(xs), depth]."""
        if self._preprocess is not None:
            xs = [self._preprocess(x) for x in xs]
        rows = [as_array(x) for x in xs]
        try:
            stacked = np.asarray(rows)
        except ValueError:
            stacked = np.empty(0)  # ragged: reported below
        if stacked.shape != (len(xs), self.depth):
            shape = next((list(np.shape(x)) for x in xs if np.shape(x) != (self.depth,)), "ragged")
            raise InputError(f"`x` of a row stream must be one time step of shape [{self.depth}], got {shape}.")
        return self.convert(stacked)


def check_finite_normalized(normalized: np.ndarray) -> None:
    """InputError if finite features became NaN or infinite when normalized ((x - mean) / std overflowed)."""
    bad = ~np.isfinite(normalized)
    if bad.any():
        positions = _first_positions(bad)
        raise InputError(
            f"`x` is finite but normalizing it ((x - mean) / std, the model's normalization) overflows float32 "
            f"at positions {positions}: values that large are not sensor readings this model was trained on."
        )


def _first_positions(mask: np.ndarray) -> list[tuple[int, ...]]:
    """Index tuples of the first five True elements of `mask`, for messages."""
    return [tuple(int(i) for i in where) for where in np.argwhere(mask)[:5]]


def as_array(x: Any) -> np.ndarray:
    """`x` as a numpy array; InputError for masked arrays, ragged lists and non-numeric data."""
    if isinstance(x, np.ma.MaskedArray):
        raise InputError("`x` is a masked array: fill the masked values first (x.filled(value)) or drop the step.")
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as err:
        raise InputError(f"`x` must be a rectangular array of floats, got {type(x).__name__} ({err}).") from None
    if array.dtype == object:
        raise InputError(f"`x` must be a rectangular array of floats, got a ragged or mixed {type(x).__name__}.")
    return array


def check_finite(x: np.ndarray) -> None:
    """InputError naming the positions of NaN and infinite values, if `x` has any."""
    bad = ~np.isfinite(x)
    if bad.any():
        positions = _first_positions(bad)
        values = [float(x[p]) for p in positions]
        more = "" if bad.sum() <= 5 else f" (and {int(bad.sum()) - 5} more)"
        raise InputError(
            f"`x` holds non-finite values at positions {positions}: {values}{more}. They would poison the LSTM "
            "state: clean them, or pass allow_nonfinite=True to the model."
        )


class Outputs:
    """The model outputs: dequantization and postprocess.

    Args:
        specs: the output tensors, in signature order.
        postprocess: stateless callable applied to every result, or None.
    """

    def __init__(self, specs: Sequence[TensorSpec], postprocess: Callable[[Output], Any] | None) -> None:
        self.specs = tuple(specs)
        self._postprocess = postprocess
        self.fast = len(self.specs) == 1 and self.specs[0].scale is None and postprocess is None
        """True when the single float output is returned as it is (a copy)."""

    def finish(self, raw: dict[str, np.ndarray], axes: tuple[int, ...]) -> Any:
        """Output arrays by name -> the result, without the size-1 `axes` the input left out."""
        outputs = {}
        for spec in self.specs:
            y = raw[spec.name]
            if spec.scale is not None:
                y = dequantize(y, spec)
            outputs[spec.name] = drop_axes(y, axes)
        result: Output = outputs[self.specs[0].name] if len(outputs) == 1 else outputs
        return result if self._postprocess is None else self._postprocess(result)

    def finish_rows(self, raw: dict[str, np.ndarray], count: int) -> list[Any]:
        """Batched output arrays [batch, ...] by name -> one result per row of the first `count`."""
        if self.fast:
            y = raw[self.specs[0].name]
            return [y[k] for k in range(count)]
        return [self.finish({name: y[k : k + 1] for name, y in raw.items()}, (0,)) for k in range(count)]
