"""`numpy_step`: the NumPy reference step, float32, written for speed."""

from __future__ import annotations

import numpy as np

from benchmarks.peers.weights import Weights, dims, gate_stacked

# Gates stacked so the three sigmoid gates are contiguous: one sigmoid call, one tanh call.
_ORDER = ("input", "forget", "output", "cell")


class _Layer:
    """Preallocated buffers of one layer.

    One matmul computes all gates: `wr` is [4U, D + U + 1] = [W | R | b] with
    gates in `_ORDER`, and `z` = [x, h, 1]. The sigmoid gates' rows are
    pre-scaled by 0.5, so a single tanh over all gates gives tanh(v / 2) for them
    (sigma(v) = 0.5 tanh(v / 2) + 0.5) and tanh(v) for the cell candidate.
    """

    def __init__(self, layer: dict, depth: int) -> None:
        w, r, b = gate_stacked(layer, _ORDER)
        self.units = n = r.shape[1]
        wr = np.concatenate([w, r, b[:, None]], axis=1)
        wr[: 3 * n] *= 0.5
        self.wr = np.ascontiguousarray(wr, dtype=np.float32)
        self.z = np.zeros(depth + n + 1, np.float32)
        self.x = self.z[:depth]
        self.h = self.z[depth : depth + n]
        self.z[-1] = 1.0
        self.c = np.zeros(n, np.float32)
        self.gates = np.empty(4 * n, np.float32)
        self.sig = self.gates[: 3 * n]
        self.i, self.f, self.o, self.g = (self.gates[k * n : (k + 1) * n] for k in range(4))
        self.tmp = np.empty(n, np.float32)

    def reset(self) -> None:
        self.h[:] = 0.0
        self.c[:] = 0.0

    def step(self) -> np.ndarray:
        """Advances one step from `self.x`; returns the new h (a view of `self.z`)."""
        gates, sig, tmp = self.gates, self.sig, self.tmp
        np.dot(self.wr, self.z, out=gates)
        np.tanh(gates, out=gates)
        sig *= 0.5
        sig += 0.5
        self.c *= self.f
        np.multiply(self.i, self.g, out=tmp)
        self.c += tmp
        np.tanh(self.c, out=tmp)
        np.multiply(self.o, tmp, out=self.h)
        return self.h


class NumpyStep:
    """Streams an LSTM stack in NumPy, one step per call, state kept inside.

    One matmul and one tanh for all gates of a layer (see `_Layer`); no allocation
    per step except the returned copy of the output. BLAS threading is
    process-wide (`OPENBLAS_NUM_THREADS`, `threadpoolctl`), so `threads` is
    recorded but not applied here.
    """

    name = "numpy_step"

    def __init__(self, weights: Weights, threads: int = 1) -> None:
        d = dims(weights)
        self.threads = threads
        self._layers: list[_Layer] = []
        depth = d.depth
        for layer in weights["layers"]:
            self._layers.append(_Layer(layer, depth))
            depth = self._layers[-1].units
        self._kernel = np.ascontiguousarray(weights["head"]["kernel"], dtype=np.float32)
        self._bias = np.asarray(weights["head"]["bias"], dtype=np.float32)
        self._y = np.empty(d.outputs, np.float32)
        self._activation = weights["activation"]

    def reset(self) -> None:
        """Zeroes every layer's h and c."""
        for layer in self._layers:
            layer.reset()

    def step(self, x: np.ndarray) -> np.ndarray:
        """x float32 [depth] -> head output float32 [outputs]."""
        inputs = x
        for layer in self._layers:
            layer.x[:] = inputs
            inputs = layer.step()
        y = self._y
        np.dot(inputs, self._kernel, out=y)
        y += self._bias
        if self._activation == "sigmoid":
            y *= 0.5
            np.tanh(y, out=y)
            y *= 0.5
            y += 0.5
        elif self._activation == "softmax":
            y -= y.max()
            np.exp(y, out=y)
            y /= y.sum()
        return y.copy()


def make_numpy_step(weights: Weights, *, threads: int = 1) -> NumpyStep:
    """The NumPy reference step (see `NumpyStep`)."""
    return NumpyStep(weights, threads)
