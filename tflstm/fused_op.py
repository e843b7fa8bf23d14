"""The TFLite `UNIDIRECTIONAL_SEQUENCE_LSTM` op: slot layout and gate order, in one place.

The fused op takes 24 inputs. Weights are stored per gate, in the gate order
input (i), forget (f), cell candidate (c, often called g or j), output (o):

    slot  0         input, float32 [time, batch, depth] when time_major
    slots 1-4       input-to-{i, f, c, o} weights, [num_units, depth]
    slots 5-8       recurrent-to-{i, f, c, o} weights, [num_units, output_size]
    slots 9-11      peephole (cell-to-{i, f, o}) weights, [num_units], optional
    slots 12-15     gate biases {i, f, c, o}, [num_units]
    slot  16        projection weights, [num_proj, num_units], optional
    slot  17        projection bias, [num_proj], optional (tflstm never sets it)
    slot  18        output (h) state, [batch, output_size], a *variable* tensor
    slot  19        cell (c) state, [batch, num_units], a *variable* tensor
    slots 20-23     layer-norm coefficients, optional (tflstm never sets them)

One step computes (sigma is the logistic function, * is elementwise):

    i = sigma(W_i x + R_i h + p_i * c_prev + b_i)
    f = sigma(W_f x + R_f h + p_f * c_prev + b_f)
    g = tanh(W_c x + R_c h + b_c)
    c = clip(f * c_prev + i * g, cell_clip)          # no clip when cell_clip == 0
    o = sigma(W_o x + R_o h + p_o * c + b_o)
    h = clip(P (o * tanh(c)), proj_clip)             # P only with a projection

`output_size` is `num_proj` with a projection and `num_units` without.
"""

from __future__ import annotations

BUILTIN_CODE = 44
OP_NAME = "UNIDIRECTIONAL_SEQUENCE_LSTM"

GATES = ("input", "forget", "cell", "output")
"""Gate order of the per-gate weight and bias slots."""

INPUT = 0
INPUT_WEIGHTS = {gate: 1 + k for k, gate in enumerate(GATES)}
RECURRENT_WEIGHTS = {gate: 5 + k for k, gate in enumerate(GATES)}
PEEPHOLE_WEIGHTS = {"input": 9, "forget": 10, "output": 11}
GATE_BIASES = {gate: 12 + k for k, gate in enumerate(GATES)}
PROJECTION_WEIGHTS = 16
PROJECTION_BIAS = 17
OUTPUT_STATE = 18
CELL_STATE = 19
NUM_INPUTS = 24

STATE_SLOTS = {"h": OUTPUT_STATE, "c": CELL_STATE}
"""Slots of the two variable state tensors, by state kind."""

WEIGHT_KINDS = ("input", "recurrent", "peephole", "bias")
"""Kinds of per-gate weights: input-to-gate, recurrent-to-gate, peephole (cell-to-gate), bias."""

PROJECTION_WEIGHT_NAME = "projection_w"


def weight_name(kind: str, gate: str) -> str:
    """tflstm's name of one per-gate weight, e.g. `weight_name("input", "forget")` -> "input_to_forget_w".

    The names are those of `TFLiteLSTMCell`'s variables and of the weights dicts
    the benchmark peers take.
    """
    if kind not in WEIGHT_KINDS:
        raise ValueError(f"Weight kind must be one of {WEIGHT_KINDS}, got {kind!r}.")
    if gate not in GATES or (kind == "peephole" and gate not in PEEPHOLE_WEIGHTS):
        gates = tuple(PEEPHOLE_WEIGHTS) if kind == "peephole" else GATES
        raise ValueError(f"Gate of a {kind} weight must be one of {gates}, got {gate!r}.")
    if kind == "bias":
        return f"{gate}_bias"
    prefix = "cell" if kind == "peephole" else kind
    return f"{prefix}_to_{gate}_w"


WEIGHT_SLOTS: dict[str, int] = {
    **{weight_name("input", g): s for g, s in INPUT_WEIGHTS.items()},
    **{weight_name("recurrent", g): s for g, s in RECURRENT_WEIGHTS.items()},
    **{weight_name("peephole", g): s for g, s in PEEPHOLE_WEIGHTS.items()},
    **{weight_name("bias", g): s for g, s in GATE_BIASES.items()},
    PROJECTION_WEIGHT_NAME: PROJECTION_WEIGHTS,
}
"""Every weight name and the fused-op input slot it feeds."""
