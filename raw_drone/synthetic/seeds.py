"""The drone simulator's derived seeds.

Two simulators, two algorithms: this one hashes any parts (ints, floats such as an intensity
ratio, strings such as a tile id) with blake2b to 63 bits; ``raw_microscopy.synthetic.seeds``
feeds integer parts to numpy's ``SeedSequence`` for 32 bits. Each algorithm fixes the noise of
its published synthetic data, so neither can take the other's place without changing those
data: they stay two, each named for what it does.
"""

from __future__ import annotations

import hashlib
from typing import Any


def _blake2b_seed(*parts: Any) -> int:
    """A 63-bit seed from any parts (ints, floats, strings), stable across runs and platforms."""
    text = "|".join(repr(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1
