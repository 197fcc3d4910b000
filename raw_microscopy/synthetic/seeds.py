"""The microscopy simulator's derived seeds.

Two simulators, two algorithms: this one feeds integer parts to numpy's ``SeedSequence`` for a
32-bit seed; ``raw_drone.synthetic.seeds`` hashes any parts (floats, tile-id strings) with
blake2b to 63 bits. Each algorithm fixes the noise of its published synthetic data, so neither
can take the other's place without changing those data: they stay two, each named for what it
does.
"""

from __future__ import annotations

import numpy as np


def _seed_sequence_seed(*parts: int) -> int:
    """A 32-bit integer seed derived from integer parts (stable across runs and platforms)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint32)[0])
