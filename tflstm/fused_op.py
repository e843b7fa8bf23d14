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
