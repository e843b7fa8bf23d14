"""Finding NaN and Inf among float32 values with a few big-integer operations over their bytes.

Cheaper than `np.isfinite(x).all()` on the small arrays of one time step: read
the values' bytes as one integer v, then `((v & exponent) + carry) & top` is
non-zero exactly when some value is NaN or infinite (see `nonfinite_masks`).
"""

from __future__ import annotations

import sys

import numpy as np

Masks = tuple[int, int, int]
"""(exponent, carry, top): see `nonfinite_masks`."""


def nonfinite_masks(count: int) -> Masks:
    """Masks that find a NaN or Inf among `count` float32 values read as one integer v.

    A float32 is NaN or infinite when its 8 exponent bits are all ones. For each
    32-bit lane, (v & exponent) + carry sets the lane's top bit exactly then (and
    never carries into the next lane), so `((v & exponent) + carry) & top` is
    non-zero iff some value is not finite. The masks are the same integers
    whichever byte order v was read in, as long as it is the values' own.
    """

    def repeated(lane: int) -> int:
        return int.from_bytes(np.full(count, lane, np.uint32).tobytes(), sys.byteorder)

    return repeated(0x7F800000), repeated(0x00800000), repeated(0x80000000)


def has_nonfinite(raw: bytes | memoryview, masks: Masks, byteorder: str) -> bool:
    """Whether the float32 values in `raw` (stored in `byteorder`) hold a NaN or Inf; `masks` of their count."""
    exponent, carry, top = masks
    return bool(((int.from_bytes(raw, byteorder) & exponent) + carry) & top)
